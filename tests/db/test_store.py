import json
import shutil

import numpy as np
import pytest
from tests.conftest import make_tiny_model

from cardid.catalog.records import Catalog
from cardid.db.build import add_cards, build_db
from cardid.db.features import GalleryFeatures
from cardid.db.store import EMBEDDINGS, FEATURES, IDS, INDEX, META, METADATA, CardDB, DBError
from cardid.db.verify import VerifyConfig, extract
from cardid.embed import load_embedder
from cardid.io import sha256_file
from cardid.synth.cards import synth_cards


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    return synth_cards(tmp_path_factory.mktemp("db") / "cat", n=12, seed=4, height=256, reprint_fraction=0.2)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return load_embedder(make_tiny_model(tmp_path_factory.mktemp("m") / "model"), "cpu")


@pytest.fixture(scope="module")
def built(tmp_path_factory, catalog, embedder) -> CardDB:
    return build_db(embedder, catalog, tmp_path_factory.mktemp("b") / "db")


def test_build_writes_self_describing_db(built, catalog, embedder):
    for name in (EMBEDDINGS, INDEX, IDS, METADATA, META, FEATURES):
        assert (built.root / name).exists(), name
    meta = json.loads((built.root / META).read_text())
    assert meta["model"]["identity"] == embedder.identity
    assert meta["model"]["tensors_sha256"].startswith(embedder.identity)
    assert meta["preprocess"] == embedder.preprocess.to_dict()
    assert (meta["dim"], meta["count"], meta["dtype"]) == (32, len(catalog), "f32")
    emb = np.load(built.root / EMBEDDINGS)
    assert emb.dtype == np.float32 and emb.shape == (len(catalog), 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert json.loads((built.root / IDS).read_text()) == catalog.ids
    assert "image_file" not in json.loads((built.root / METADATA).read_text())[0]


@pytest.mark.parametrize("exact", [True, False])
def test_search_finds_each_scan_first(built, exact):
    hits = built.search(built.embeddings, k=3, exact=exact)
    assert [h[0].card_id for h in hits] == built.ids
    assert all(h[0].similarity == pytest.approx(1.0, abs=1e-3) for h in hits)
    assert all(h[0].similarity >= h[1].similarity >= h[2].similarity for h in hits)
    one = built.search(built.embeddings[3], k=2)
    assert len(one) == 1 and one[0][0].record.id == built.ids[3]


def test_i8_index_and_unknown_dtype(tmp_path, catalog, embedder):
    db = build_db(embedder, catalog, tmp_path / "i8", dtype="i8", verify=None)
    assert db.features is None and db.meta["dtype"] == "i8"
    assert [h[0].card_id for h in db.search(db.embeddings, 1)] == db.ids  # exact search is float32
    # the i8 graph is approximate: its similarities stay close to the float32 ones
    for i, hs in enumerate(db.search(db.embeddings, 3, exact=False)):
        for h in hs:
            assert h.similarity == pytest.approx(float(db.embeddings[i] @ db.embeddings[h.row]), abs=0.05)
    with pytest.raises(DBError, match="unknown index dtype"):
        build_db(embedder, catalog, tmp_path / "x", dtype="f8")


def _rehash(root):
    """Corrupt-then-rehash: the structural checks (not the file hashes) must catch these."""
    meta = json.loads((root / META).read_text())
    meta["files"] = {n: sha256_file(root / n) for n in meta["files"]}
    (root / META).write_text(json.dumps(meta))


def _dup_id(root):
    ids = json.loads((root / IDS).read_text())
    ids[1] = ids[0]
    (root / IDS).write_text(json.dumps(ids))
    _rehash(root)


def _drop_metadata(root):
    recs = json.loads((root / METADATA).read_text())
    (root / METADATA).write_text(json.dumps(recs[1:]))
    _rehash(root)


def _rename_card(root):
    recs = json.loads((root / METADATA).read_text())
    recs[0]["name"] = "Charizard (not really)"
    (root / METADATA).write_text(json.dumps(recs))


def _zero_descriptors(root):
    d = np.load(root / FEATURES / "descriptors.npy")
    np.save(root / FEATURES / "descriptors.npy", np.zeros_like(d))


def _meta_field(key, value):
    def f(root):
        meta = json.loads((root / META).read_text())
        meta[key] = value
        (root / META).write_text(json.dumps(meta))

    return f


def _short_embeddings(root):
    np.save(root / EMBEDDINGS, np.load(root / EMBEDDINGS)[:-1])
    _rehash(root)


def _truncate(name):
    def f(root):
        data = (root / name).read_bytes()
        (root / name).write_bytes(data[: len(data) // 2])

    return f


def _bad_offsets(root):
    off = np.load(root / FEATURES / "offsets.npy")
    off[-1] += 5
    np.save(root / FEATURES / "offsets.npy", off)
    _rehash(root)


def _index_other_dim(root):
    from cardid.db.store import usearch_index

    idx = usearch_index()(ndim=16, metric="cos")
    n = json.loads((root / META).read_text())["count"]
    idx.add(np.arange(n), np.random.default_rng(0).normal(size=(n, 16)).astype(np.float32))
    idx.save(str(root / INDEX))
    _rehash(root)


CORRUPTIONS = {
    "missing index": (lambda r: (r / INDEX).unlink(), "incomplete: index.usearch is missing"),
    "missing db.json": (lambda r: (r / META).unlink(), "incomplete: db.json is missing"),
    "truncated embeddings": (_truncate(EMBEDDINGS), "embeddings.npy was modified or truncated"),
    "truncated index": (_truncate(INDEX), "index.usearch was modified or truncated"),
    "duplicate id": (_dup_id, "duplicate card ids"),
    "id without metadata": (_drop_metadata, "without metadata"),
    "rows != count": (_short_embeddings, r"embeddings \(11, 32\)"),
    "index of another dim": (_index_other_dim, "index holds"),
    "feature offsets": (_bad_offsets, "inconsistent with the DB"),
    "db.json not json": (lambda r: (r / META).write_text("{"), "not valid JSON"),
    "renamed card": (_rename_card, "card_metadata.json was modified"),
    "zeroed descriptors": (_zero_descriptors, "features/descriptors.npy was modified"),
    "count a string": (_meta_field("count", "12"), "'count' must be a int"),
    "files a list": (_meta_field("files", ["a"]), "'files' must be a dict"),
    "file outside": (_meta_field("files", {"../x": "0"}), "points outside"),
    "verification junk": (_meta_field("verification", {"bogus": 1}), "unknown or missing fields"),
    "model without identity": (_meta_field("model", {}), "model.identity"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_integrity_checks_fire(tmp_path, built, case):
    corrupt, message = CORRUPTIONS[case]
    root = shutil.copytree(built.root, tmp_path / "db")
    CardDB.load(root)  # the copy is fine before the corruption
    corrupt(root)
    with pytest.raises(DBError, match=message):
        CardDB.load(root)


def test_db_refuses_another_model(tmp_path, built):
    other = load_embedder(make_tiny_model(tmp_path / "other", seed=1), "cpu")
    with pytest.raises(DBError, match="was built by model"):
        CardDB.load(built.root, other)


def test_incremental_add_equals_full_rebuild(tmp_path, catalog, embedder):
    first, second = catalog.subset(catalog.ids[:8]), catalog.subset(catalog.ids[8:])
    db = add_cards(build_db(embedder, first, tmp_path / "inc"), embedder, second)
    full = build_db(embedder, catalog, tmp_path / "full")
    assert db.ids == full.ids and len(db.index) == len(full)
    np.testing.assert_allclose(db.embeddings, full.embeddings, atol=1e-6)
    assert json.loads((db.root / METADATA).read_text()) == json.loads((full.root / METADATA).read_text())
    for a, b in zip(db.features._arrays(), full.features._arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    q = full.embeddings + 0.05 * np.random.default_rng(0).normal(size=full.embeddings.shape)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    for exact in (True, False):
        got = [[h.card_id for h in hs] for hs in db.search(q, 4, exact)]
        assert got == [[h.card_id for h in hs] for hs in full.search(q, 4, exact)]


def test_add_refuses_known_cards_and_leaves_db_unchanged(tmp_path, built, catalog, embedder):
    root = shutil.copytree(built.root, tmp_path / "db")
    before = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    with pytest.raises(DBError, match="already in the DB"):
        add_cards(CardDB.load(root), embedder, catalog.subset(catalog.ids[:2]))
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == before


def test_missing_scans_stop_the_build_unless_skipped_then_add_brings_them_in(tmp_path, catalog, embedder):
    holey = Catalog.load(shutil.copytree(catalog.root, tmp_path / "holey"))
    gone = holey.ids[2:4]
    for c in gone:
        holey.image_path(c).unlink()
    with pytest.raises(Exception, match="2 of 12 card images are missing"):
        build_db(embedder, holey, tmp_path / "db", verify=None)
    assert not (tmp_path / "db").exists()
    db = build_db(embedder, holey, tmp_path / "db", verify=None, skip_missing=True)
    assert db.ids == [c for c in catalog.ids if c not in gone]
    assert db.meta["skipped_missing"] == gone
    db = add_cards(db, embedder, catalog.subset(gone[:1]))
    assert db.meta["skipped_missing"] == gone[1:] and len(db) == 11


def test_failed_rebuild_keeps_the_old_db(tmp_path, built, catalog, embedder):
    root = shutil.copytree(built.root, tmp_path / "db")
    bad_dir = shutil.copytree(catalog.root, tmp_path / "bad")
    bad = Catalog.load(bad_dir)
    bad.image_path(bad.ids[5]).write_bytes(b"not an image")
    with pytest.raises(Exception, match="corrupt or unsupported image"):
        build_db(embedder, bad, root, overwrite=True)
    assert CardDB.load(root, embedder).ids == built.ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "db"]  # no temp dirs left behind


def test_gallery_features_roundtrip_and_concat(tmp_path, catalog):
    cfg = VerifyConfig(features=100)
    imgs = [catalog.load_image(c) for c in catalog.ids[:3]]
    gf = GalleryFeatures.compute(imgs[:2], cfg).concat(GalleryFeatures.compute(imgs[2:], cfg))
    gf.save(tmp_path)
    back = GalleryFeatures.load(tmp_path, cfg, 3)
    pts, desc = back.keypoints(2)
    f = extract(imgs[2], cfg)
    np.testing.assert_array_equal(desc, f.descriptors)
    np.testing.assert_array_equal(pts, f.points)
    assert back.strips.shape == (3, *cfg.strip_shape)


def test_gallery_features_in_threads_match_serial_and_keep_order(catalog):
    """Also the regression test of a shared CLAHE object, which gave other keypoints under threads."""
    cfg = VerifyConfig(features=100)
    ids = catalog.ids[:10]
    seen: list[str] = []

    def load(cid):
        seen.append(cid)
        return catalog.load_image(cid)

    serial = GalleryFeatures.compute([catalog.load_image(c) for c in ids], cfg)
    threaded = GalleryFeatures.compute(ids, cfg, load=load, workers=4)
    assert sorted(seen) == sorted(ids)
    for a, b in zip(serial._arrays(), threaded._arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


def testusearch_index_then_onnxruntime_does_not_crash():
    """onnxruntime segfaults when imported after usearch's native module; the DB imports it first."""
    import subprocess
    import sys

    code = "from cardid.db.store import usearch_index; usearch_index(); import onnxruntime; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-500:]
