import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")

from cardid.cloud import s3 as s3mod  # noqa: E402
from cardid.errors import CardIDError  # noqa: E402


@pytest.fixture(scope="module")
def endpoint():
    """A real local S3 (and SageMaker) server: moto's, on 127.0.0.1 only."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    c = s3mod.client("s3", "us-east-1", endpoint)
    name = f"cardid-test-{time.monotonic_ns()}"
    c.create_bucket(Bucket=name)
    return c, name


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _make(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "small.txt").write_text("hello")
    (root / "a" / "b" / "big.bin").write_bytes(bytes(range(256)) * 50_000)  # 12.8 MB: multipart
    (root / "a" / "c.json").write_text("{}")
    return root


def test_round_trip_and_skip_unchanged(s3, tmp_path):
    c, bucket = s3
    src = _make(tmp_path / "src")
    uri = f"s3://{bucket}/datasets/embedding"
    plan = s3mod.sync_up(src, uri, c, chunk_mb=5)
    assert len(plan.transfer) == 3 and not plan.unchanged
    again = s3mod.sync_up(src, uri, c, chunk_mb=5)
    assert not again.transfer and len(again.unchanged) == 3  # nothing re-sent
    (src / "a" / "c.json").write_text('{"x": 1}')
    assert [k for _, k, _ in s3mod.sync_up(src, uri, c, dry_run=True).transfer] == [
        "datasets/embedding/a/c.json"
    ]
    down = tmp_path / "down"
    s3mod.sync_down(uri, down, c)
    assert _tree(down) == {**_tree(src), "a/c.json": b"{}"}  # the dry run sent nothing
    s3mod.sync_up(src, uri, c)
    plan = s3mod.sync_down(uri, down, c)
    assert [k for _, k, _ in plan.transfer] == ["datasets/embedding/a/c.json"] and _tree(down) == _tree(src)


def test_interrupted_upload_resumes_without_partial_objects(s3, tmp_path, monkeypatch):
    c, bucket = s3
    src = _make(tmp_path / "src")
    uri = f"s3://{bucket}/models/detection"
    real = c.upload_file
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            # what a killed process leaves behind: a multipart upload that was never completed
            c.create_multipart_upload(Bucket=bucket, Key="models/detection/a/c.json")
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(c, "upload_file", flaky)
    with pytest.raises(KeyboardInterrupt):
        s3mod.sync_up(src, uri, c, chunk_mb=5)
    monkeypatch.setattr(c, "upload_file", real)
    keys = {o["Key"] for o in c.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert keys == {"models/detection/a/b/big.bin"}  # the interrupted file is not visible at all
    plan = s3mod.sync_up(src, uri, c, chunk_mb=5)
    assert len(plan.unchanged) == 1 and len(plan.transfer) == 2  # only what was missing
    assert not c.list_multipart_uploads(Bucket=bucket).get("Uploads")
    s3mod.sync_down(uri, tmp_path / "down", c)
    assert _tree(tmp_path / "down") == _tree(src)


def test_bad_input(s3, tmp_path, monkeypatch):
    c, _ = s3
    with pytest.raises(CardIDError, match="does not exist"):
        s3mod.sync_up(_make(tmp_path / "src"), "s3://no-such-bucket-here/x", c)
    with pytest.raises(CardIDError, match="not an S3 URI"):
        s3mod.sync_up(tmp_path, "bucket/x", c)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CardIDError, match="no AWS credentials"):
        s3mod.client("s3", "us-east-1")


@pytest.mark.parametrize("key", ["models/../../X.txt", "models/a/../../../X.txt", "models/..\\..\\X.txt"])
def test_sync_down_never_writes_outside_local(s3, tmp_path, key):
    c, bucket = s3
    c.put_object(Bucket=bucket, Key="models/ok.txt", Body=b"fine")
    c.put_object(Bucket=bucket, Key=key, Body=b"evil")
    local = tmp_path / "a" / "local"
    with pytest.raises(CardIDError, match="outside"):
        s3mod.sync_down(f"s3://{bucket}/models", local, c)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # refused before any download
