"""AWS: the spec's S3 layout and sync (:mod:`.s3`), SageMaker training-job requests built with
boto3 and validated offline (:mod:`.jobs`), the least-privilege IAM policy (:mod:`.iam`) and the
cost estimate (:mod:`.cost`). Only ``boto3`` is needed (extra ``cardid[aws]``), not the SageMaker SDK.
"""

from __future__ import annotations

#: The spec's bucket layout (relative prefixes).
LAYOUT = {
    "datasets/detection": "detection dataset (cardid data detection)",
    "datasets/embedding": "embedding dataset (cardid data embedding) or catalog",
    "models/detection": "detector runs (best.pt, best.onnx)",
    "models/embedding/teacher": "teacher model directories",
    "models/embedding/students": "students/<target>/ model directories and exports",
    "artifacts": "source bundles, checkpoints, reports",
}
