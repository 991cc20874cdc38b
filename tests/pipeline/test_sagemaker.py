"""The sagemaker execution: training stages become the SageMaker jobs `cardid cloud launch` builds
(spot, checkpoints to S3, the spec's layout), validated offline; nothing is launched."""

import json

import pytest
import yaml

from cardid.errors import CardIDError
from cardid.pipeline import load_recipe, run

pytest.importorskip("botocore")


def recipe(tmp_path, catalog, **sm):
    doc = {
        "name": "sm-test",
        "device": "cuda",  # the jobs' device; nothing runs on this machine's GPU
        "execution": "sagemaker",
        "sagemaker": {
            "bucket": "cardid-test",
            "role_arn": "arn:aws:iam::123456789012:role/cardid",
            "instance_type": {"teacher": "ml.g5.4xlarge", "students": "ml.g4dn.xlarge"},
            **sm,
        },
        "stages": {
            "catalog": {"path": str(catalog)},
            "detection-data": {"scenes": 3, "size": 160},
            "teacher": {"preset": "vitl16", "patience": 3, "config": {"phase2": {"steps": 3000}}},
            "students": {"preset": "spec"},
            "detector": {"epochs": 50, "imgsz": 640},
        },
    }
    path = tmp_path / "sm.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_recipe(path)


def test_training_stages_become_validated_spot_job_requests(tmp_path, synth_catalog):
    res = run(recipe(tmp_path, synth_catalog.root), tmp_path / "run", log=lambda s: None)
    reqs = {
        k: json.loads((tmp_path / "run" / k / "request.json").read_text())
        for k in ("teacher", "students", "detector")
    }
    t = reqs["teacher"]
    assert t["ResourceConfig"]["InstanceType"] == "ml.g5.4xlarge" and t["EnableManagedSpotTraining"] is True
    assert t["CheckpointConfig"]["S3Uri"].startswith("s3://cardid-test/artifacts/checkpoints/teacher/")
    assert (
        t["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://cardid-test/datasets/embedding/"
    )
    hps = {k: json.loads(v) for k, v in t["HyperParameters"].items()}
    overrides = json.loads(hps["cardid_overrides"])
    # what the recipe changed travels; this machine's paths do not (the job reads its channels)
    assert "patience=3" in overrides and "phase2.steps=3000" in overrides
    assert not any(o.startswith(("out_dir=", "data.train=", "teacher=", "device=")) for o in overrides)
    assert hps["cardid_command"] == "train teacher"
    assert reqs["students"]["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert json.loads(reqs["students"]["HyperParameters"]["cardid_command"]) == "distill"
    assert reqs["detector"]["OutputDataConfig"]["S3OutputPath"] == "s3://cardid-test/models/detection/"
    figures = {s["name"]: s["figure"] for s in res.stages}
    assert "not launched (dry_run)" in figures["teacher"] and "spot" in figures["teacher"]


def test_a_sagemaker_recipe_without_a_bucket_or_with_a_bad_instance_type_says_so(tmp_path, synth_catalog):
    with pytest.raises(CardIDError, match="needs sagemaker.bucket and sagemaker.role_arn"):
        run(recipe(tmp_path, synth_catalog.root, bucket=""), tmp_path / "a", log=lambda s: None)
    with pytest.raises(CardIDError, match="not a SageMaker training instance type"):
        bad = {"teacher": "ml.g5.huge"}
        run(recipe(tmp_path, synth_catalog.root, instance_type=bad), tmp_path / "b", log=lambda s: None)
