"""SageMaker training jobs as plain ``CreateTrainingJob`` requests (boto3), validated offline.

The job runs *our* CLI inside the AWS PyTorch training container: the source bundle (this package,
its configs and ``cardid_entry.py``) is uploaded to ``artifacts/source/``; the container's training
toolkit runs the entry script, which installs the package and starts ``cardid <command>`` — under
``torchrun`` across every GPU of every instance. Checkpoints go to ``/opt/ml/checkpoints`` (synced
to S3 by SageMaker, and what the training loops resume from after a spot interruption). A Hugging
Face token is read at run time from Secrets Manager: only the secret's *name* is in the request.
"""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cardid.errors import CardIDError

#: AWS Deep Learning Container accounts by region (PyTorch training images).
DLC_ACCOUNTS = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}
DEFAULT_DLC_ACCOUNT = "763104351884"
DLC_TAG = "2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"

#: Our log lines → CloudWatch metrics (``step=120 loss=2.69 … img_s=170.7``, ``eval … recall@1=0.81``).
METRIC_DEFINITIONS = [
    {"Name": "train:loss", "Regex": r"step=\d+ (?:phase=\d )?loss=([0-9.eE+-]+)"},
    {"Name": "train:img_s", "Regex": r"img_s=([0-9.]+)"},
    {"Name": "val:recall@1", "Regex": r"eval step=\d+ .*?recall@1=([0-9.]+)"},
    {"Name": "val:recall@5", "Regex": r"eval step=\d+ .*?recall@5=([0-9.]+)"},
]

COMMANDS = {"teacher": "train teacher", "distill": "distill", "detector": "train detector"}

#: The spec's jobs.
SPEC_JOBS = {
    "teacher": {
        "instance_type": "ml.g5.4xlarge",
        "config": "configs/teacher-vitl16.yaml",
        "channels": {"train": "datasets/embedding"},
        "output": "models/embedding/teacher",
        "max_run_hours": 24,
    },
    "distill": {
        "instance_type": "ml.g4dn.xlarge",
        "config": None,
        "channels": {"train": "datasets/embedding", "teacher": "models/embedding/teacher"},
        "output": "models/embedding/students",
        "max_run_hours": 24,
    },
    "detector": {
        "instance_type": "ml.g4dn.xlarge",
        "config": None,
        "channels": {"train": "datasets/detection"},
        "output": "models/detection",
        "max_run_hours": 12,
    },
}


class JobConfig(BaseModel):
    """One training job. Unknown keys are an error (a typo must not silently launch defaults)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["teacher", "distill", "detector"] = "teacher"
    bucket: str = ""
    role_arn: str = ""
    region: str = "us-east-1"
    job_name: str | None = None  # default: cardid-<kind>-<timestamp>
    instance_type: str | None = None  # default: the spec's for the kind
    instance_count: int = Field(1, ge=1)
    volume_gb: int = Field(100, ge=1)
    spot: bool = True
    max_run_hours: float | None = None
    max_wait_hours: float | None = None  # spot: run + waiting for capacity (default 2 × run)
    image_uri: str | None = None
    config: str | None = None  # run config inside the source bundle (YAML)
    overrides: list[str] = Field(default_factory=list)  # --set key=value for the training command
    channels: dict[str, str] | None = None  # name → S3 prefix (relative to the bucket) or s3:// URI
    output: str | None = None
    source_uri: str | None = None  # s3:// URI of the source bundle (set by `launch`)
    hf_token_secret: str | None = None  # Secrets Manager secret name holding HF_TOKEN
    tags: dict[str, str] = Field(default_factory=dict)

    def resolved(self) -> JobConfig:
        spec = SPEC_JOBS[self.kind]
        d = self.model_dump()
        for k in ("instance_type", "config", "channels", "output", "max_run_hours"):
            if d[k] is None:
                d[k] = spec[k]
        d["job_name"] = d["job_name"] or f"cardid-{self.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
        d["max_wait_hours"] = d["max_wait_hours"] or 2 * d["max_run_hours"]
        d["image_uri"] = d["image_uri"] or image_uri(self.region)
        return JobConfig(**d)


def image_uri(region: str) -> str:
    account = DLC_ACCOUNTS.get(region, DEFAULT_DLC_ACCOUNT)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/pytorch-training:{DLC_TAG}"


def _uri(bucket: str, where: str) -> str:
    return where if where.startswith("s3://") else f"s3://{bucket}/{where.strip('/')}/"


def build_request(cfg: JobConfig) -> dict:
    """The exact ``CreateTrainingJob`` request for ``cfg`` (validated before it is returned)."""
    c = cfg.resolved()
    if not c.bucket:
        raise CardIDError("job config needs `bucket`")
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/.+", c.role_arn):
        raise CardIDError(f"job config needs a SageMaker execution role ARN, got {c.role_arn!r}")
    hps = {
        "sagemaker_program": "cardid_entry.py",
        "sagemaker_submit_directory": c.source_uri or f"s3://{c.bucket}/artifacts/source/cardid.tar.gz",
        "sagemaker_region": c.region,
        "cardid_command": COMMANDS[c.kind],
        "cardid_overrides": json.dumps(c.overrides),
    }
    if c.config:
        hps["cardid_config"] = c.config
    # the container's toolkit passes hyperparameters JSON-encoded, as the SageMaker SDK does
    hps = {k: json.dumps(v) for k, v in hps.items()}
    req: dict = {
        "TrainingJobName": c.job_name,
        "RoleArn": c.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": c.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "HyperParameters": hps,
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": _uri(c.bucket, where),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, where in (c.channels or {}).items()
        ],
        "OutputDataConfig": {"S3OutputPath": _uri(c.bucket, c.output)},
        "ResourceConfig": {
            "InstanceType": c.instance_type,
            "InstanceCount": c.instance_count,
            "VolumeSizeInGB": c.volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": int(c.max_run_hours * 3600)},
        "EnableManagedSpotTraining": c.spot,
        "CheckpointConfig": {
            "S3Uri": f"s3://{c.bucket}/artifacts/checkpoints/{c.kind}/{c.job_name}/",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "Environment": {"CARDID_JOB_KIND": c.kind, "YOLO_OFFLINE": "1"},
        "Tags": [{"Key": "project", "Value": "cardid"}] + [{"Key": k, "Value": v} for k, v in c.tags.items()],
    }
    if c.spot:
        req["StoppingCondition"]["MaxWaitTimeInSeconds"] = int(c.max_wait_hours * 3600)
    if c.hf_token_secret:
        req["Environment"]["HF_TOKEN_SECRET"] = c.hf_token_secret
    validate_request(req)
    return req


def validate_request(req: dict) -> None:
    """botocore's own parameter validation against the SageMaker service model, plus checks
    the model cannot express (training instance types, spot wait ≥ run time)."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateTrainingJob").input_shape
    report = ParamValidator().validate(req, shape)
    if report.has_errors():
        raise CardIDError("invalid CreateTrainingJob request:\n" + report.generate_report())
    it = req["ResourceConfig"]["InstanceType"]
    allowed = model.shape_for("TrainingInstanceType").enum
    if it not in allowed:
        near = [x for x in allowed if x.split(".")[1] == it.split(".")[1]] if it.count(".") == 2 else []
        raise CardIDError(
            f"{it!r} is not a SageMaker training instance type"
            + (f" (try {', '.join(near[:4])})" if near else "")
        )
    sc = req["StoppingCondition"]
    if req.get("EnableManagedSpotTraining") and sc.get("MaxWaitTimeInSeconds", 0) < sc["MaxRuntimeInSeconds"]:
        raise CardIDError("spot jobs need MaxWaitTimeInSeconds ≥ MaxRuntimeInSeconds")


def source_bundle(repo: str | Path, out: str | Path) -> Path:
    """``tar.gz`` of what the container needs: ``src/``, ``pyproject.toml``, ``README.md``,
    ``configs/`` and the entry script at the top level."""
    repo, out = Path(repo), Path(out)
    entry = Path(__file__).with_name("entry.py")
    with tarfile.open(out, "w:gz") as tar:
        for name in ("pyproject.toml", "README.md", "src", "configs"):
            p = repo / name
            if not p.exists():
                raise CardIDError(f"source bundle: {p} is missing (run from the repository root)")
            tar.add(p, arcname=name, filter=lambda t: None if "__pycache__" in t.name else t)
        tar.add(entry, arcname="cardid_entry.py")
    return out


def launch(cfg: JobConfig, repo: str | Path = ".", dry_run: bool = False, sm=None, s3=None) -> dict:
    """Upload the source bundle and create the job; ``dry_run`` returns the request only."""
    import hashlib
    import tempfile

    c = cfg.resolved()
    with tempfile.TemporaryDirectory() as d:
        bundle = source_bundle(repo, Path(d) / "cardid.tar.gz")
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:12]
        c = c.model_copy(update={"source_uri": f"s3://{c.bucket}/artifacts/source/cardid-{digest}.tar.gz"})
        req = build_request(c)
        if dry_run:
            return req
        from cardid.cloud.s3 import check_bucket, client

        s3 = s3 or client("s3", c.region)
        check_bucket(s3, c.bucket)
        s3.upload_file(str(bundle), c.bucket, f"artifacts/source/cardid-{digest}.tar.gz")
    sm = sm or client("sagemaker", c.region)
    resp = sm.create_training_job(**req)
    return {"request": req, "response": {k: v for k, v in resp.items() if k != "ResponseMetadata"}}
