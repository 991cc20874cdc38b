"""The dependency lock: `requirements-lock.txt`, made by pip-tools, installed exactly.

    python tools/lock.py check     # is the lock made from the pyproject.toml beside it? (one line if not)
    python tools/lock.py stamp     # after pip-compile: record which pyproject.toml the lock was made from
    python tools/lock.py sync      # run by the venv's python: remove what the lock does not name,
                                   # then verify every locked version and that exactly one cv2 is installed

Standard library only: `check` runs before any environment exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements-lock.txt"
PYPROJECT = ROOT / "pyproject.toml"
DIGEST_PREFIX = "# pyproject-digest: "
# Distributions that provide the `cv2` module; exactly one may be installed (the headless one).
CV2_DISTS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
# Installed but never locked: the installer itself and the project (installed editable from the tree).
NOT_LOCKED = {"pip", "cardid"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_digest(path: Path = PYPROJECT) -> str:
    """A digest of what decides the lock: dependencies, extras, build requirements, Python range.

    Comments and unrelated settings (ruff, pytest) do not change it.
    """
    import tomllib  # Python >= 3.11; `check` skips with a note on older Pythons

    data = tomllib.loads(path.read_text())
    project = data.get("project", {})
    decisive = {
        "build-system.requires": data.get("build-system", {}).get("requires", []),
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
    }
    blob = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def recorded_digest(lock: Path = LOCK) -> str | None:
    for line in lock.read_text().splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line[len(DIGEST_PREFIX) :].strip()
    return None


def _pins(lock: Path) -> dict[str, tuple[str, str | None]]:
    """`{normalised name: (version, environment marker or None)}` for every `name==version` line."""
    pins = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if m:
            pins[_norm(m.group(1))] = (m.group(2), m.group(3))
    return pins


def locked_versions(lock: Path = LOCK) -> dict[str, str]:
    """`{normalised name: version}` for every `name==version` line of the lock."""
    return {name: version for name, (version, _) in _pins(lock).items()}


def check(lock: Path = LOCK, pyproject: Path = PYPROJECT) -> str | None:
    """None when the lock matches pyproject.toml, else the one line that says what to do."""
    if not lock.is_file():
        return f"{lock.name} is missing: run `make lock` and commit it"
    try:
        want = pyproject_digest(pyproject)
    except ImportError:
        print(f"note: Python {sys.version.split()[0]} has no tomllib; the lock's freshness is not checked")
        return None
    have = recorded_digest(lock)
    if have != want:
        return (
            f"{lock.name} is out of date with pyproject.toml (its dependencies changed since the lock was "
            "made): run `make lock` and commit requirements-lock.txt"
        )
    return None


def stamp(lock: Path = LOCK, pyproject: Path = PYPROJECT) -> None:
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(DIGEST_PREFIX)]
    lines.insert(0, DIGEST_PREFIX + pyproject_digest(pyproject))
    lock.write_text("\n".join(lines) + "\n")


def installed() -> dict[str, str]:
    from importlib import metadata

    return {_norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def sync(lock: Path = LOCK) -> list[str]:
    """Uninstall what the lock does not name; return the problems left (empty when exact)."""
    extra = sorted(set(installed()) - set(locked_versions(lock)) - NOT_LOCKED)
    if extra:
        print(f"removing {len(extra)} package(s) the lock does not name: {', '.join(extra)}")
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", *extra], check=True)
    return problems(lock)


def problems(lock: Path = LOCK) -> list[str]:
    """How this environment differs from the lock: versions, and more or less than one cv2."""
    have = installed()
    problems = [
        f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
        for name, (version, marker) in sorted(_pins(lock).items())
        if have.get(name) != version and _applies(marker)
    ]
    cv2 = [d for d in CV2_DISTS if d in have]
    if len(cv2) != 1:
        problems.append(f"exactly one OpenCV distribution must provide cv2, found {cv2 or 'none'}")
    return problems


def _applies(marker: str | None) -> bool:
    """False for a locked line whose environment marker excludes this interpreter/platform."""
    if not marker:
        return True
    try:
        from pip._vendor.packaging.markers import Marker
    except ImportError:  # pragma: no cover - pip always vendors packaging
        return True
    return Marker(marker).evaluate()


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "check":
        msg = check()
        if msg:
            print(f"error: {msg}", file=sys.stderr)
            return 1
        return 0
    if cmd == "stamp":
        stamp()
        return 0
    if cmd == "sync":
        problems = sync()
        for p in problems:
            print(f"error: the environment does not match the lock: {p}", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
