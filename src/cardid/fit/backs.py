"""A card's back, learned: reference crops of the back and the cosine from which a crop is one.

**The references** come from labelled photos that show a card's front and back side by side
(listing photos): in each, the box that is not the photo's card and lies apart from it is a
candidate; the candidates that agree with one another (cosine ≥ ``agree`` to at least one other)
are the back, the rest (a hand, a price tag) are left out. Or they are given as images.

**The threshold** is fitted on simulated camera views (:func:`cardid.synth.photo.render_crop`) of
the references (backs) and of gallery cards (not backs): halfway between the closest a card's view
comes to a back and the 5th percentile of the backs' views, with the share of each it calls a back. A view is a back when it
is that close to a reference and closer to it than to any gallery card.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np

from cardid.db.backs import save_backs
from cardid.db.store import CardDB
from cardid.decision.decide import MATCH
from cardid.detect.rectify import orientations, rectify
from cardid.embed import Embedder
from cardid.errors import CardIDError
from cardid.images import load_rgb
from cardid.synth.photo import prepare_scan, render_crop
from cardid.synth.settings import photo_preset

#: notes of a labelled photo showing a card's front and back side by side
FRONT_AND_BACK = ("landscape", "front+back", "front and back", "back")


def back_candidates(rec, rows: Sequence[dict], limit: int = 8) -> list[tuple[np.ndarray, str]]:
    """(crop, photo path) of the boxes that may be a card's back: in labelled photos whose notes
    say front and back, the boxes apart from a match of the photo's card (at most ``limit`` photos,
    in the list's order)."""
    from cardid.recognize.merge import overlap

    out = []
    for r in rows:
        if len(out) >= limit:
            break
        if not any(k in (r.get("notes") or "").lower() for k in FRONT_AND_BACK):
            continue
        image = load_rgb(r["path"])
        cards = rec.recognize_photo(image).cards
        fronts = [c for c in cards if c.decision.kind == MATCH and c.card_id == r["card_id"] and c.corners]
        if not fronts:
            continue
        for c in cards:
            if c in fronts or not c.corners or c.fallback is not None:
                continue
            if all(overlap(c.corners, f.corners)[1] < 0.1 for f in fronts):
                crop = rectify(image, np.asarray(c.corners, np.float32))
                out.append((crop, str(r["path"])))
                break
    return out


def agreeing(emb: np.ndarray, agree: float = 0.75) -> list[int]:
    """The crops (``emb``: ``(crops, 2, dim)``, each both ways up) that have another crop at cosine
    ``agree`` or more, either way up."""
    n = len(emb)
    flat = emb.reshape(n * 2, -1)
    sim = (flat @ flat.T).reshape(n, 2, n, 2).max(axis=(1, 3))
    np.fill_diagonal(sim, -1.0)
    return [i for i in range(n) if sim[i].max() >= agree]


def _views(images: Sequence[np.ndarray], per: int, seed: int) -> list[np.ndarray]:
    cfgs = [photo_preset(p) for p in ("default", "heavy")]
    out = []
    for i, im in enumerate(images):
        for v in range(per):
            cfg = cfgs[v % len(cfgs)]
            rng = np.random.default_rng([seed, i, v, 0xBAC])
            out.append(render_crop(prepare_scan(im, cfg), rng, cfg))
    return out


def fit_back_threshold(
    embedder: Embedder,
    db: CardDB,
    refs: np.ndarray,
    backs: Sequence[np.ndarray],
    cards: Sequence[np.ndarray],
    views: int = 8,
    seed: int = 0,
) -> dict:
    """The threshold from simulated views of ``backs`` and of ``cards`` (gallery scans)."""
    pos = embedder.embed(_views(backs, views, seed))
    neg = embedder.embed(_views(cards, 2, seed + 1))

    def called(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = (e @ refs.T).max(1)
        g = (e @ np.asarray(db.embeddings, np.float32).T).max(1)
        return s, s > g

    ps, pcloser = called(pos)
    ns, ncloser = called(neg)
    # halfway between the closest any view of a card came to a back (closer to a back than to its
    # own card or not: an unknown card is close to no gallery card) and the 5th percentile of the
    # backs' views
    low = float(np.quantile(ps, 0.05))
    t = round(min((float(ns.max()) + low) / 2, 0.99), 3)
    return {
        "threshold": t,
        "back_views": len(pos),
        "back_views_found": float(((ps >= t) & pcloser).mean()),
        "card_views": len(neg),
        "card_views_taken_for_backs": float(((ns >= t) & ncloser).mean()),
        "card_views_max_cosine": round(float(ns.max()), 4),
        "back_views_p5_cosine": round(low, 4),
    }


def fit_backs(
    db: CardDB,
    embedder: Embedder,
    crops: Sequence[np.ndarray],
    source: str,
    files: Sequence[str] = (),
    cards: int = 200,
    seed: int = 0,
    agree: float | None = 0.75,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Store the DB's backs from candidate ``crops`` (those that agree, or all when ``agree`` is
    None) with a threshold fitted on simulated views; returns what was fitted."""
    if not crops:
        raise CardIDError(
            f"no card back to learn from {source}: no photo showed a card's front and back apart"
        )
    emb = embedder.embed([o for c in crops for o in orientations(c)])
    keep = list(range(len(crops))) if agree is None else agreeing(emb.reshape(len(crops), 2, -1), agree)
    if not keep:
        raise CardIDError(
            f"the {len(crops)} candidate back(s) from {source} do not agree with one another "
            f"(cosine < {agree}): give a reference image of the card back instead"
        )
    refs = np.concatenate([emb[2 * i : 2 * i + 2] for i in keep])
    refs = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    gallery = db.gallery()
    ids = sorted(gallery.ids, key=lambda c: zlib.crc32(c.encode()))[:cards]
    fit = fit_back_threshold(
        embedder, db, refs, [crops[i] for i in keep], [gallery.load_image(c) for c in ids], seed=seed
    )
    info = {k: v for k, v in fit.items() if k != "threshold"}
    used = [str(files[i]) for i in keep] if files else []
    save_backs(
        db, refs, fit["threshold"], source=source, crops=len(keep), candidates=len(crops), files=used, **info
    )
    if progress:
        progress(1)
    return {"crops": len(keep), "candidates": len(crops), **fit}


def learn_backs(
    model,
    db,
    photos=None,
    images: Sequence = (),
    detector: str = "classical",
    conf: float = 0.25,
    limit: int = 8,
) -> dict:
    """``cardid index backs``: the DB's card backs from reference ``images`` of a back, or cut
    from labelled ``photos`` showing a card's front and back (the first ``limit`` such photos),
    with the threshold fitted on simulated views. Returns what was fitted and what to say."""
    from pathlib import Path

    from cardid.data.photoset import load_photo_set
    from cardid.embed import load_embedder
    from cardid.recognize import Recognizer, make_detector

    emb = load_embedder(model)
    card_db = CardDB.load(db, emb)
    if images:
        crops, files = [load_rgb(p) for p in images], [str(p) for p in images]
        source, agree = f"{len(crops)} reference image(s) of a card back", None
    elif photos is not None:
        rec = Recognizer.open(emb, card_db, make_detector(detector, conf))
        found = back_candidates(rec, load_photo_set(photos).rows(), limit)
        crops, files = [c for c, _ in found], [f for _, f in found]
        source, agree = f"front+back photos of {Path(photos).name}", 0.75
    else:
        raise CardIDError("give reference images of a card back (--image) or labelled photos (--photos)")
    fit = fit_backs(card_db, emb, crops, source, files, agree=agree)
    said = (
        f"card backs stored in {db}: {fit['crops']} reference crop(s) of {fit['candidates']} from {source}; "
        f"a crop is a back from cosine {fit['threshold']} (simulated views: {fit['back_views_found']:.1%} "
        f"of backs found, {fit['card_views_taken_for_backs']:.2%} of cards taken for backs)"
    )
    return {**fit, "said": said}
