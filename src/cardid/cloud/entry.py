"""SageMaker entry point (``cardid_entry.py`` in the source bundle): runs inside the AWS PyTorch
training container. Installs the bundled package, fetches the HF token from Secrets Manager when a
secret name is given, and starts the cardid command under torchrun across every GPU of every host.
Standard library only until the package is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _hp(name: str, default: str | None = None) -> str | None:
    hps = json.loads(os.environ.get("SM_HPS", "{}"))
    v = hps.get(name, default)
    return v if v is None or isinstance(v, str) else json.dumps(v)


def command(env: dict[str, str] | None = None) -> list[str]:
    """The torchrun command line for this host (pure function of the SageMaker environment)."""
    env = dict(os.environ if env is None else env)
    hps = json.loads(env.get("SM_HPS", "{}"))
    hosts = json.loads(env.get("SM_HOSTS", '["algo-1"]'))
    host = env.get("SM_CURRENT_HOST", hosts[0])
    gpus = int(env.get("SM_NUM_GPUS", "0") or 0)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={len(hosts)}",
        f"--node_rank={hosts.index(host)}",
        f"--nproc_per_node={max(gpus, 1)}",
        f"--master_addr={hosts[0]}",
        "--master_port=29500",
        "-m",
        "cardid.cli",
        *hps["cardid_command"].split(),
    ]
    if hps.get("cardid_config"):
        cmd += ["--config", hps["cardid_config"]]
    for o in json.loads(hps.get("cardid_overrides", "[]")):
        cmd += ["--set", o]
    return cmd


def main() -> int:
    here = Path(__file__).resolve().parent
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{here}[detect]"], check=True)
    secret = os.environ.get("HF_TOKEN_SECRET")
    if secret and not os.environ.get("HF_TOKEN"):
        import boto3

        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
        os.environ["HF_TOKEN"] = json.loads(value).get("HF_TOKEN", value) if value.startswith("{") else value
    os.chdir(here)  # configs/ paths in the job config are relative to the bundle
    return subprocess.run(command()).returncode


if __name__ == "__main__":
    sys.exit(main())
