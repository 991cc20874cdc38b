"""Paths built from data (metadata fields, object keys) stay inside their root; outputs replace
only what cardid wrote; a replace killed at any instant is recovered."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from tests.catalog.test_download import Server
from tests.conftest import make_tiny_model

from cardid.catalog import CardRecord, Catalog
from cardid.cli import main
from cardid.errors import CardIDError
from cardid.io import MARKER, atomic_dir, inside, recover_dir, write_json_atomic


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("bad", ["../../X.png", "/tmp/cardid-abs-X.png", "images/../../X.png", "..", "."])
def test_inside_refuses_escapes(tmp_path, bad):
    with pytest.raises(CardIDError, match="outside"):
        inside(tmp_path / "root", bad, "image_file")


def test_inside_refuses_a_symlink_out(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(CardIDError, match="outside"):
        inside(tmp_path / "root", "link/X.png")
    assert inside(tmp_path / "root", "images/a b ü.png") == tmp_path / "root" / "images" / "a b ü.png"


@pytest.mark.parametrize("bad", ["../../X.png", "ABS"])
def test_catalog_download_never_writes_outside_the_catalog(tmp_path, capsys, bad):
    srv = Server()
    try:
        target = tmp_path / "X.png"
        bad = str(target) if bad == "ABS" else bad
        root = tmp_path / "a" / "cat"
        recs = [
            CardRecord(
                id="s-0", name="x", set_id="s", image_url=srv.url + "/ok/0.png", image_file="images/s-0.png"
            ),
            CardRecord(id="s-1", name="x", set_id="s", image_url=srv.url + "/ok/1.png", image_file=bad),
        ]
        Catalog(root, recs).save()
        before = _files(tmp_path)
        assert main(["catalog", "download", str(root)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "s-1" in err[0] and "outside" in err[0]
        assert not target.exists() and _files(tmp_path) == before  # nothing written at all
        assert not srv.hits  # refused before any request
    finally:
        srv.httpd.shutdown()


def test_overwrite_replaces_only_what_cardid_wrote(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.txt").write_text("years of work")
    with pytest.raises(CardIDError, match="did not create it"), atomic_dir(user, overwrite=True, kind="db"):
        pass
    assert (user / "thesis.txt").read_text() == "years of work"
    out = tmp_path / "db"
    with atomic_dir(out, kind="db") as d:
        (d / "x").write_text("1")
    assert json.loads((out / MARKER).read_text())["kind"] == "db"
    with pytest.raises(CardIDError, match="not a catalog"), atomic_dir(out, overwrite=True, kind="catalog"):
        pass
    with atomic_dir(out, overwrite=True, kind="db") as d:
        (d / "x").write_text("2")
    assert (out / "x").read_text() == "2"


def test_index_build_into_its_own_scan_folder_is_refused(tmp_path, capsys):
    assert main(["synth", "cards", "--n", "3", "--out", str(tmp_path / "cat"), "--height", "96"]) == 0
    cat = tmp_path / "cat"
    before = {p: p.read_bytes() for p in cat.rglob("*") if p.is_file()}
    model = make_tiny_model(tmp_path / "m")
    for out in (cat / "images", cat):
        rc = main(
            ["index", "build", "--model", str(model), "--catalog", str(cat), "--out", str(out), "--overwrite"]
        )
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert rc == 1 and len(errors) == 1 and "input" in errors[0] and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in cat.rglob("*") if p.is_file()} == before


_REPLACE = textwrap.dedent(
    """
    import os, sys, signal
    from pathlib import Path
    import cardid.io as io
    out, moment = Path(sys.argv[1]), sys.argv[2]
    real = os.replace
    calls = []
    def replace(a, b):
        calls.append((a, b))
        if moment == "between" and len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # after old -> .old, before tmp -> out
        real(a, b)
    io.os.replace = replace
    with io.atomic_dir(out, overwrite=True, kind="db") as d:
        (d / "v").write_text("new")
        if moment == "writing":
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("moment", ["writing", "between"])
def test_a_replace_killed_at_any_moment_is_recovered(tmp_path, moment):
    out = tmp_path / "db"
    with atomic_dir(out, kind="db") as d:
        (d / "v").write_text("old")
    r = subprocess.run([sys.executable, "-c", _REPLACE, str(out), moment], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "db"]
    assert leftovers  # the kill left its temporaries (and, between the renames, no db at all)
    recover_dir(out)
    assert (out / "v").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["db"]  # everything stale cleaned


def test_killed_file_writes_leave_nothing_once_written_again(tmp_path):
    target = tmp_path / "db.json"
    code = (
        "import os, signal, cardid.io as io\n"
        f"with io.atomic_path({str(target)!r}) as t:\n"
        "    t.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert len(list(tmp_path.iterdir())) == 1 and not target.exists()
    write_json_atomic(target, {"ok": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["db.json"]


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_outputs_follow_the_umask(tmp_path, monkeypatch, umask, file_mode, dir_mode):
    import cardid.io

    monkeypatch.setattr(cardid.io, "_UMASK", umask)  # the process umask, read once at import
    write_json_atomic(tmp_path / "a.json", {})
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == file_mode  # mkstemp alone gives 0600
    assert (tmp_path / "d").stat().st_mode & 0o777 == dir_mode  # mkdtemp alone gives 0700


def test_demo_never_clears_a_folder_it_did_not_create(tmp_path, capsys):
    out = tmp_path / "mine"
    for sub in ("catalog", "models", "teacher", "db"):
        (out / sub).mkdir(parents=True)
        (out / sub / "keep.txt").write_text(sub)
    before = _files(out)
    assert main(["demo", "--out", str(out)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not create it" in errors[0]
    assert _files(out) == before
