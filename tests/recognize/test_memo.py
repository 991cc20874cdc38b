"""A photo decided again from its memo (another query adapter, as the fold evaluation does) gives
exactly what deciding it from scratch gives, and the memo keeps no crop."""

import cv2
import numpy as np
import pytest
from tests.conftest import build_index

from cardid.decision.match import Query
from cardid.embed.adapter import QueryAdapter
from cardid.recognize import Recognizer
from cardid.recognize.recognizer import Memo
from cardid.synth.surfaces import background


def _photos(catalog):
    out = []
    for i, cid in enumerate(catalog.ids[:4]):
        rng = np.random.default_rng(i)
        img = background(rng, 320, 240).copy()
        card = cv2.resize(catalog.load_image(cid), (150, 210), interpolation=cv2.INTER_AREA)
        img[55:265, 45:195] = card
        out.append(img)
    out.append(cv2.resize(catalog.load_image(catalog.ids[5]), (150, 210)))  # nothing to find
    return out


def _json(result):
    r = result.to_json()
    r.pop("ms", None)
    return r


@pytest.fixture(scope="module")
def recognizer(synth_catalog, tmp_path_factory):
    model, db = build_index(tmp_path_factory.mktemp("memo"), synth_catalog.root)
    return Recognizer.open(model, db, "classical")


def test_decided_again_from_a_memo_as_from_scratch(recognizer, synth_catalog):
    m = recognizer.matcher
    photos = _photos(synth_catalog)
    memos = [Memo() for _ in photos]
    first = [_json(recognizer.recognize_photo(p, memo=memo)) for p, memo in zip(photos, memos, strict=True)]
    assert all(memo.dets is not None for memo in memos)
    assert memos[-1].whole is not None  # the card filling the frame: the whole-image look is kept
    kept = [q for memo in memos for q in [*memo.queries.values(), memo.whole_query] if q]
    assert kept and all(isinstance(q, Query) and q.image is None for q in kept)  # no crop kept
    assert any(q.cache for q in kept)  # the verifications made are

    dim = m.db.embeddings.shape[1]
    rng = np.random.default_rng(0)
    adapter = QueryAdapter(np.eye(dim) + 0.4 * rng.standard_normal((dim, dim)), 1.0, 0)
    adapted = recognizer.with_(adapter=adapter)  # another matcher: the first stays as it was
    again = [_json(adapted.recognize_photo(p, memo=memo)) for p, memo in zip(photos, memos, strict=True)]
    fresh = [_json(adapted.recognize_photo(p)) for p in photos]
    assert again == fresh
    assert again != first  # the adapter changed what is decided, so the memo was not a replay
    # and without the adapter, the memo gives the first pass back
    assert [
        _json(recognizer.recognize_photo(p, memo=memo)) for p, memo in zip(photos, memos, strict=True)
    ] == first
