import json

import numpy as np
import pytest
from tests.conftest import make_tiny_model, realdata

from cardid.catalog.records import Catalog
from cardid.cli import main
from cardid.embed import TorchEmbedder, load_embedder
from cardid.errors import CardIDError
from cardid.eval.baselines import phash_vectors
from cardid.eval.evaluate import evaluate
from cardid.eval.queries import load_queries
from cardid.images import save_rgb


@pytest.fixture(scope="module")
def distinct_catalog(tmp_path_factory):
    """No reprints: every scan has its own pHash, so scans as queries must all be found."""
    from cardid.synth.cards import synth_cards

    return synth_cards(
        tmp_path_factory.mktemp("distinct") / "cat", n=8, seed=5, height=128, reprint_fraction=0.0
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model"))


def eval_cli(model, gallery, queries, json_out, *extra):
    return main(
        [
            "eval",
            "retrieval",
            "--model",
            str(model),
            "--gallery",
            str(gallery),
            "--queries",
            str(queries),
            "--json",
            str(json_out),
            *extra,
        ]
    )


def test_phash_vectors_rank_like_hamming(synth_catalog):
    imgs = [synth_catalog.load_image(c) for c in synth_catalog.ids[:4]]
    v = phash_vectors(iter(imgs))
    assert v.shape == (4, 64) and np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert np.isclose(v[0] @ v[0], 1.0)


def test_query_csv_and_folder_sources(tmp_path, synth_catalog):
    img = synth_catalog.load_image(synth_catalog.ids[0])
    save_rgb(tmp_path / "q" / "a.jpg", img)
    save_rgb(tmp_path / "q" / "b.jpg", img)
    # Excel's byte-order mark is fine; the same photo listed twice is not
    (tmp_path / "q.csv").write_text(
        f"\ufefffile,card_id\nq/a.jpg,{synth_catalog.ids[0]}\nq/b.jpg,not-a-card\n"
    )
    qs = load_queries(tmp_path / "q.csv")
    assert len(qs) == 2
    kept, dropped = qs.restrict_to(synth_catalog)
    assert len(kept) == 1 and dropped == 1
    (tmp_path / "bad.csv").write_text("path,label\nx,y\n")
    (tmp_path / "dup.csv").write_text("file,card_id\nq/a.jpg,x\nq/a.jpg,y\n")
    with pytest.raises(CardIDError, match="'q/a.jpg' is listed twice"):
        load_queries(tmp_path / "dup.csv")
    with pytest.raises(CardIDError, match="needs columns"):
        load_queries(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("file,card_id\nnope.jpg,x\n")
    with pytest.raises(CardIDError, match="missing"):
        load_queries(tmp_path / "missing.csv")


def test_evaluate_reports_model_baseline_and_collapse(tiny_model_dir, distinct_catalog):
    synth_catalog = distinct_catalog
    emb = load_embedder(tiny_model_dir, device="cpu")
    assert isinstance(emb, TorchEmbedder) and emb.dim == 32 and len(emb.identity) == 16
    ids = synth_catalog.class_index.idx_to_class
    queries = [synth_catalog.load_image(c) for c in ids]  # the scans themselves: pHash must be perfect
    rep = evaluate(emb, synth_catalog, queries, ids)
    assert rep["phash"]["recall@1"] == 1.0
    assert set(rep["model"]) >= {"recall@1", "recall@5", "map@r", "loo_nn_acc"}
    assert set(rep["collapse"]) == {"mean_offdiag_cos", "effective_rank", "dim_std"}


def test_eval_cli_on_a_plain_scan_folder(tmp_path, tiny_model_dir, distinct_catalog, capsys):
    synth_catalog = distinct_catalog
    folder = tmp_path / "scans"
    for c in synth_catalog.ids[:5]:
        save_rgb(folder / f"{c}.png", synth_catalog.load_image(c))
    assert len(Catalog.open(folder)) == 5
    (tmp_path / "q.csv").write_text(
        "file,card_id\n" + "".join(f"scans/{c}.png,{c}\n" for c in synth_catalog.ids[:5])
    )
    assert eval_cli(tiny_model_dir, folder, tmp_path / "q.csv", tmp_path / "r.json", "--workers", "0") == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["phash"]["recall@1"] == 1.0 and rep["gallery"] == 5
    assert "phash" in capsys.readouterr().out


@pytest.mark.realdata
def test_eval_on_the_real_gallery_and_photos(tiny_model_dir, tmp_path):
    rep_path = tmp_path / "r.json"
    assert eval_cli(tiny_model_dir, realdata("gallery"), realdata("queries-dev.csv"), rep_path) == 0
    rep = json.loads(rep_path.read_text())
    assert rep["gallery"] == 884 and rep["model"]["queries"] == 16
    assert rep["phash"]["recall@1"] > 0.3  # the classical reference every model is compared with
