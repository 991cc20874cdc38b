import json

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from tests.cloud.test_s3 import endpoint, s3  # noqa: F401  (fixtures: the local moto server)

from cardid.cli import main
from cardid.cloud import entry, jobs
from cardid.cloud.cost import SPEC_TABLE, estimate
from cardid.cloud.iam import role_policy
from cardid.errors import CardIDError

ROLE = "arn:aws:iam::123456789012:role/cardid-sagemaker"


def test_spec_teacher_request_is_valid(tmp_path):
    req = jobs.build_request(jobs.JobConfig(kind="teacher", bucket="my-bucket", role_arn=ROLE, job_name="t1"))
    assert req["ResourceConfig"]["InstanceType"] == "ml.g5.4xlarge" and req["EnableManagedSpotTraining"]
    assert req["StoppingCondition"]["MaxWaitTimeInSeconds"] >= req["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert req["CheckpointConfig"] == {
        "S3Uri": "s3://my-bucket/artifacts/checkpoints/teacher/t1/",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert req["OutputDataConfig"]["S3OutputPath"] == "s3://my-bucket/models/embedding/teacher/"
    assert (
        req["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        == "s3://my-bucket/datasets/embedding/"
    )
    hps = {k: json.loads(v) for k, v in req["HyperParameters"].items()}
    assert hps["cardid_command"] == "train teacher" and hps["cardid_config"] == "configs/teacher-vitl16.yaml"
    assert "HF_TOKEN" not in json.dumps(req)  # never a token in the request
    assert req["AlgorithmSpecification"]["TrainingImage"].startswith("763104351884.dkr.ecr.us-east-1")


def test_metric_regexes_match_our_log_lines():
    import re

    line = "step=120 phase=2 loss=2.6949 acc=0.906 lr=2.00e-05 img_s=170.7 global_batch=32"
    ev = "eval step=120 recall@1=0.8083 recall@5=0.9917 map@r=0.8083"
    found = {}
    for m in jobs.METRIC_DEFINITIONS:
        for text in (line, ev):
            if (hit := re.search(m["Regex"], text)) is not None:
                found[m["Name"]] = float(hit.group(1))
    assert found == {
        "train:loss": 2.6949,
        "train:img_s": 170.7,
        "val:recall@1": 0.8083,
        "val:recall@5": 0.9917,
    }


def test_bad_job_configs_fail_before_anything_is_sent():
    with pytest.raises(CardIDError, match="not a SageMaker training instance type"):
        jobs.build_request(jobs.JobConfig(bucket="b", role_arn=ROLE, instance_type="ml.g5.5xlarge"))
    with pytest.raises(CardIDError, match="role ARN"):
        jobs.build_request(jobs.JobConfig(bucket="b", role_arn="me"))
    with pytest.raises(Exception, match="extra"):
        jobs.JobConfig(bucket="b", role_arn=ROLE, instance_typ="ml.g5.4xlarge")
    with pytest.raises(CardIDError, match="MaxWaitTimeInSeconds"):
        jobs.build_request(jobs.JobConfig(bucket="b", role_arn=ROLE, max_run_hours=5, max_wait_hours=1))
    with pytest.raises(CardIDError, match="invalid CreateTrainingJob request"):
        jobs.validate_request({"TrainingJobName": "x"})


def test_dry_run_cli_prints_the_request(tmp_path, capsys):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(f"bucket: my-bucket\nrole_arn: {ROLE}\njob_name: dry\n")
    assert (
        main(["cloud", "launch", "teacher", "--config", str(cfg), "--dry-run", "--set", "instance_count=2"])
        == 0
    )
    req = json.loads(capsys.readouterr().out)
    assert req["TrainingJobName"] == "dry" and req["ResourceConfig"]["InstanceCount"] == 2
    assert req["HyperParameters"]["sagemaker_submit_directory"].startswith(
        '"s3://my-bucket/artifacts/source/cardid-'
    )
    cfg.write_text("bucket: b\nrole_arn: x\nnot_a_field: 1\n")
    assert main(["cloud", "launch", "teacher", "--config", str(cfg), "--dry-run"]) == 1


def test_launch_against_a_local_sagemaker_endpoint(s3, endpoint):  # noqa: F811
    from cardid.cloud.s3 import client

    c, bucket = s3
    sm = client("sagemaker", "us-east-1", endpoint)
    res = jobs.launch(
        jobs.JobConfig(kind="distill", bucket=bucket, role_arn=ROLE, job_name="d1"), sm=sm, s3=c
    )
    assert res["response"]["TrainingJobArn"].endswith("training-job/d1")
    desc = sm.describe_training_job(TrainingJobName="d1")
    assert desc["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="artifacts/source/")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".tar.gz")  # the source bundle went up first
    with pytest.raises(CardIDError, match="does not exist"):
        jobs.launch(jobs.JobConfig(bucket="no-such-bucket-x", role_arn=ROLE), sm=sm, s3=c)


def test_entry_runs_torchrun_across_hosts_and_gpus():
    env = {
        "SM_HPS": json.dumps(
            {
                "cardid_command": "train teacher",
                "cardid_config": "configs/teacher-vitl16.yaml",
                "cardid_overrides": json.dumps(["phase1.steps=10"]),
            }
        ),
        "SM_HOSTS": json.dumps(["algo-1", "algo-2"]),
        "SM_CURRENT_HOST": "algo-2",
        "SM_NUM_GPUS": "4",
    }
    cmd = entry.command(env)
    assert cmd[1:3] == ["-m", "torch.distributed.run"]
    assert {"--nnodes=2", "--node_rank=1", "--nproc_per_node=4", "--master_addr=algo-1"} <= set(cmd)
    assert cmd[-6:] == [
        "train",
        "teacher",
        "--config",
        "configs/teacher-vitl16.yaml",
        "--set",
        "phase1.steps=10",
    ]


def test_iam_policy_and_cost_tables(capsys):
    pol = role_policy("my-bucket")
    res = [s["Resource"] for s in pol["Statement"]]
    assert "arn:aws:s3:::my-bucket" in res and not any(r == "arn:aws:s3:::*" for r in res)
    lines = estimate(measured={"teacher-phase2": 220.0})
    p2 = next(x for x in lines if x.job == "teacher-phase2")
    assert p2.source == "measured" and p2.images == 6000 * 256
    assert p2.hours == pytest.approx(6000 * 256 / 220 / 3600)
    assert main(["cost"]) == 0
    out = capsys.readouterr().out
    assert "spec's table" in out and f"{sum(x[3] for x in SPEC_TABLE):.2f}" in out


def test_job_hyperparameters_are_not_run_settings():
    from cardid.sagemaker import hyperparameters

    req = jobs.build_request(jobs.JobConfig(kind="teacher", bucket="b", role_arn=ROLE, overrides=["seed=3"]))
    sm_hps = {k: json.loads(v) for k, v in req["HyperParameters"].items()}  # what the toolkit decodes
    sm_hps["phase1.steps"] = "7"
    assert hyperparameters({"SM_HPS": json.dumps(sm_hps)}) == {"phase1": {"steps": 7}}
