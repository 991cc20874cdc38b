"""Sync folders with the S3 layout: multipart uploads, unchanged objects skipped (size + SHA-256
stored as object metadata), resumable (a re-run transfers only what is missing or changed, and
aborts multipart uploads an interrupted run left behind, so no partial object is ever visible).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cardid.errors import CardIDError
from cardid.io import atomic_path, inside, sha256_file

MB = 1 << 20


def _boto3():
    try:
        import boto3
    except ImportError as e:
        raise CardIDError("cloud commands need boto3: pip install 'cardid[aws]'") from e
    return boto3


def client(service: str = "s3", region: str | None = None, endpoint_url: str | None = None):
    """A boto3 client; missing credentials are a clear error here, before any work."""
    boto3 = _boto3()
    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None:
        raise CardIDError(
            "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role)"
        )
    return session.client(service, endpoint_url=endpoint_url)


def parse_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise CardIDError(f"not an S3 URI: {uri!r} (s3://bucket/prefix)")
    bucket, _, prefix = uri[5:].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise CardIDError(f"not a valid S3 bucket name in {uri!r}: {bucket!r} (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


#: S3 bucket naming rules: 3–63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


def check_bucket(s3, bucket: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        what = "does not exist" if code in ("404", "NoSuchBucket") else f"is not accessible ({code})"
        raise CardIDError(f"S3 bucket {bucket!r} {what}") from e
    except BotoCoreError as e:  # unreachable endpoint, bad parameters, no network
        raise CardIDError(f"S3 is not reachable for bucket {bucket!r}: {e}") from e


@dataclass
class SyncPlan:
    transfer: list[tuple[Path, str, int]] = field(default_factory=list)  # local, key, size
    unchanged: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(s for _, _, s in self.transfer)


def _remote(s3, bucket: str, prefix: str) -> dict[str, int]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "/" if prefix else ""
    ):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def _same(s3, bucket: str, key: str, path: Path) -> bool:
    head = s3.head_object(Bucket=bucket, Key=key)
    return head.get("Metadata", {}).get("sha256") == sha256_file(path)


def plan_up(s3, local: Path, bucket: str, prefix: str) -> SyncPlan:
    if not local.is_dir():
        raise CardIDError(f"local folder not found: {local}")
    remote = _remote(s3, bucket, prefix)
    plan = SyncPlan()
    # skip in-flight atomic writes (".name.*.tmp"): SageMaker-style syncs run beside a live job
    files = (
        x
        for x in local.rglob("*")
        if x.is_file() and not (x.name.startswith(".") and x.name.endswith(".tmp"))
    )
    for p in sorted(files):
        key = "/".join(filter(None, [prefix, p.relative_to(local).as_posix()]))
        size = p.stat().st_size
        if remote.get(key) == size and _same(s3, bucket, key, p):
            plan.unchanged.append(key)
        else:
            plan.transfer.append((p, key, size))
    return plan


def _abort_stale_uploads(s3, bucket: str, prefix: str) -> int:
    n = 0
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for u in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
            n += 1
    return n


def sync_up(
    local: str | Path,
    uri: str,
    s3=None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    chunk_mb: int = 8,
) -> SyncPlan:
    """Upload ``local`` under ``uri``; return what was (or, with ``dry_run``, would be) sent."""
    from boto3.s3.transfer import TransferConfig

    bucket, prefix = parse_s3(uri)
    s3 = s3 or client()
    check_bucket(s3, bucket)
    plan = plan_up(s3, Path(local), bucket, prefix)
    if dry_run:
        return plan
    _abort_stale_uploads(s3, bucket, prefix)
    cfg = TransferConfig(multipart_threshold=chunk_mb * MB, multipart_chunksize=chunk_mb * MB)
    for path, key, _ in plan.transfer:
        s3.upload_file(
            str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256_file(path)}}, Config=cfg
        )
        if progress:
            progress(1)
    return plan


def sync_down(
    uri: str,
    local: str | Path,
    s3=None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SyncPlan:
    """Download everything under ``uri`` into ``local``; files already identical are skipped and
    each download lands under a temporary name first (an interrupted run leaves no partial file)."""
    bucket, prefix = parse_s3(uri)
    s3 = s3 or client()
    check_bucket(s3, bucket)
    local = Path(local)
    plan = SyncPlan()
    for key, size in sorted(_remote(s3, bucket, prefix).items()):
        rel = key[len(prefix) :].lstrip("/") if prefix else key
        if key.endswith("/"):  # a console "folder" placeholder, not a file
            continue
        dest = inside(local, rel, f"object key {key!r}")  # an object key never writes outside LOCAL
        if dest.is_file() and dest.stat().st_size == size and _same(s3, bucket, key, dest):
            plan.unchanged.append(key)
        else:
            plan.transfer.append((dest, key, size))
    if dry_run:
        return plan
    for dest, key, _ in plan.transfer:
        with atomic_path(dest) as tmp:
            s3.download_file(bucket, key, str(tmp))
        if progress:
            progress(1)
    return plan
