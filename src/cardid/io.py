"""Atomic writes, owned output directories and checked paths, shared by every package.

Every artefact is written to a temporary sibling and renamed into place, so an interrupted
command never leaves a half-written file where a complete one is expected.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Every directory cardid builds carries this file; ``--overwrite`` replaces only such directories.
MARKER = ".cardid"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _stale_temps(path: Path) -> list[Path]:
    """Temporaries of ``path`` left by processes that no longer run (killed mid-write)."""
    out = []
    for t in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
        pid = t.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            out.append(t)
    return out


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once at import: reading it means setting it, which must not race with threads writing.
_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary's name carries this process's id, so temporaries of killed runs are recognised
    and removed by the next write of the same path. The file gets the umask's permissions (as an
    ``open`` would), not ``mkstemp``'s private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for t in _stale_temps(path):
        _remove(t)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp" + path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights, DB arrays, uploads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read JSON with an error that names the file instead of a bare decoder traceback."""
    from cardid.errors import CardIDError

    path = Path(path)
    if not path.is_file():
        raise CardIDError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CardIDError(f"{what} is not valid JSON: {path} ({e})") from e


def recover_dir(path: str | os.PathLike[str]) -> Path:
    """Finish what a killed :func:`atomic_dir` replace left: the previous directory is put back
    if the new one never arrived, a leftover previous copy is removed once the new one is in
    place, and temporaries of dead processes are deleted. Safe to call at any time."""
    path = Path(path)
    old = path.with_name(f".{path.name}.old")
    if old.is_dir():
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    for t in _stale_temps(path):
        _remove(t)
    return path


def is_cardid_dir(path: Path) -> bool:
    return (path / MARKER).is_file()


def marker_kind(path: Path) -> str | None:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def check_replaceable(path: Path, kind: str, protect: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Raise unless ``path`` may be replaced by a new ``kind`` directory: it is absent or empty, or
    cardid wrote it (its marker says the same kind); and it neither is nor holds any of ``protect``
    (the command's own inputs; an output inside an input folder is fine)."""
    from cardid.errors import CardIDError

    target = path.resolve()
    for p in protect:
        src = Path(p).resolve()
        if src == target or target in src.parents:  # replacing it would delete the input
            raise CardIDError(
                f"refusing to write {path}: it {'is' if src == target else 'contains'} an input of "
                f"this command ({p}); choose another output folder"
            )
    if not path.exists():
        return
    if not path.is_dir():
        raise CardIDError(f"output path is a file, not a folder: {path}")
    if not any(path.iterdir()):
        return
    if not is_cardid_dir(path):
        raise CardIDError(
            f"refusing to replace {path}: cardid did not create it (no {MARKER} marker); "
            "move it away or choose another output folder"
        )
    found = marker_kind(path)
    if found != kind:
        raise CardIDError(f"refusing to replace {path}: it holds a cardid {found or '?'}, not a {kind}")


def write_marker(folder: Path, kind: str) -> None:
    from cardid import __version__

    write_json_atomic(folder / MARKER, {"kind": kind, "cardid": __version__})


def remove_owned(path: str | os.PathLike[str], kind: str | None = None) -> None:
    """Delete a directory only if cardid created it (its marker; of ``kind`` when given)."""
    from cardid.errors import CardIDError

    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir() or not is_cardid_dir(path) or (kind and marker_kind(path) != kind):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            return
        raise CardIDError(
            f"refusing to delete {path}: cardid did not create it (no {MARKER} marker"
            f"{f' of kind {kind!r}' if kind else ''}); move it away or choose another --out"
        )
    shutil.rmtree(path)


def check_output(
    path: str | os.PathLike[str],
    overwrite: bool = False,
    kind: str = "output",
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """What :func:`atomic_dir` checks on entry, callable before a long computation."""
    from cardid.errors import CardIDError

    path = recover_dir(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise CardIDError(f"output directory is not empty: {path} (use --overwrite to replace it)")
    check_replaceable(path, kind, protect)
    return path


def read_csv_rows(
    path: str | os.PathLike[str], required: Iterable[str], what: str = "CSV", unique: str | None = None
) -> list[dict[str, str]]:
    """Rows of a CSV as dicts: a UTF-8 byte-order mark (Excel writes one) is accepted, header
    names are stripped, ``required`` columns must exist, and when ``unique`` names a column, a
    value listed twice is an error naming it (never silently the last one)."""
    import csv

    from cardid.errors import CardIDError

    path = Path(path)
    if not path.is_file():
        raise CardIDError(f"{what} not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [n.strip() for n in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CardIDError(f"unreadable {what} {path}: {e}") from e
    need = set(required)
    if not rows or not need <= set(rows[0]):
        have = list(rows[0]) if rows else []
        raise CardIDError(f"{path}: a {what} needs columns {sorted(need)} and at least one row (has {have})")
    if unique:
        seen: dict[str, int] = {}
        for i, r in enumerate(rows, start=2):  # line numbers, the header being line 1
            v = (r.get(unique) or "").strip()
            if v in seen:
                raise CardIDError(f"{path}: {unique} {v!r} is listed twice (lines {seen[v]} and {i})")
            seen[v] = i
    return rows


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike[str],
    overwrite: bool = False,
    kind: str = "output",
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Iterator[Path]:
    """Build a directory under a temporary name and move it to ``path`` when the block succeeds.

    If ``path`` exists and ``overwrite`` is false a :class:`~cardid.errors.CardIDError` is raised
    before anything is written; with ``overwrite`` only a directory cardid wrote (its ``.cardid``
    marker names the same ``kind``) is replaced, and only at the end. ``protect``: the command's
    inputs, which the output may neither be nor contain. The replace is two renames; a kill between
    them is undone by :func:`recover_dir`, which runs first here (and in every loader)."""
    path = check_output(path, overwrite, kind, protect)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        write_marker(tmp, kind)
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def inside(root: str | os.PathLike[str], rel: str | os.PathLike[str], what: str = "path", error=None) -> Path:
    """``root / rel``, refused (``error``, default :class:`~cardid.errors.CardIDError`) unless it
    stays inside ``root``: data (metadata fields, object keys, archive members) never chooses
    where cardid writes or what it reads."""
    from cardid.errors import CardIDError

    error = error or CardIDError
    root, p = Path(root), Path(rel)
    bad = p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts) or "\\" in str(rel)
    if not bad:
        full = (root / p).resolve()
        base = root.resolve()
        bad = full != base and base not in full.parents
    if bad:
        raise error(f"{what} {str(rel)!r} points outside {root}; refused")
    return root / p
