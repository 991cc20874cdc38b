"""Procedural trading-card "scans" for the demo and tests.

Each card has a Pokémon-like layout: border, typed face colour, name bar with HP, an art window
with procedural art, attack text boxes, weakness row, set symbol, collector number and rarity
mark. A fraction of cards are deliberate near-duplicates — reprints that share the art (and name)
of an earlier card but differ in set, frame or only in the collector number — so retrieval has
the hard negatives real catalogs have.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cardid.catalog.ids import card_file_stem
from cardid.catalog.records import CardRecord, Catalog
from cardid.io import atomic_dir, write_bytes_atomic
from cardid.preprocess import CARD_ASPECT
from cardid.synth.art import draw_energy, draw_set_symbol, draw_text, render_art

TYPES: dict[str, tuple[int, int, int]] = {  # face colours (RGB)
    "Grass": (120, 180, 90),
    "Fire": (225, 110, 70),
    "Water": (90, 150, 220),
    "Lightning": (240, 210, 80),
    "Psychic": (170, 110, 190),
    "Fighting": (190, 120, 70),
    "Darkness": (70, 80, 95),
    "Metal": (160, 165, 175),
    "Colorless": (225, 220, 200),
    "Dragon": (190, 165, 80),
}
BORDERS = [(238, 200, 60), (200, 200, 205), (230, 230, 225), (60, 60, 70)]  # yellow, silver, white, black
SYLLABLES = [
    "ba",
    "be",
    "bi",
    "bo",
    "bu",
    "da",
    "de",
    "di",
    "do",
    "ka",
    "ke",
    "ki",
    "ko",
    "ku",
    "la",
    "li",
    "lo",
    "lu",
    "ma",
    "mi",
    "mo",
    "na",
    "ni",
    "no",
    "pa",
    "pi",
    "po",
    "ra",
    "ri",
    "ro",
    "sa",
    "si",
    "so",
    "ta",
    "ti",
    "to",
    "va",
    "vi",
    "zo",
    "zu",
    "chu",
    "pik",
    "char",
    "mew",
    "eev",
    "gar",
    "dra",
]
RARITIES = ["Common", "Uncommon", "Rare", "Rare Holo", "Double Rare", "Illustration Rare"]


@dataclass(frozen=True)
class SetSpec:
    id: str
    name: str
    border: tuple[int, int, int]
    symbol: int  # which set-symbol shape
    total: int
    release_date: str


def _name(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 4))
    return "".join(rng.choice(SYLLABLES, n)).capitalize()


def render_card(
    height: int,
    name: str,
    ctype: str,
    hp: int,
    art: np.ndarray,
    card_set: SetSpec,
    number: str,
    rarity: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw one card as RGBA uint8 (transparent rounded corners, like pokemontcg PNGs)."""
    h = height
    w = round(h * CARD_ASPECT)
    u = h / 512.0  # layout unit: everything scales with the card height
    img = np.empty((h, w, 3), np.uint8)
    img[:] = card_set.border
    b = max(3, round(14 * u))
    face = np.array(TYPES[ctype], np.float32)
    grad = np.linspace(1.08, 0.85, h - 2 * b, dtype=np.float32)[:, None, None]
    img[b : h - b, b : w - b] = np.clip(face * grad, 0, 255).astype(np.uint8)
    # name bar
    draw_text(
        img, name, (b + round(8 * u), b + round(28 * u)), 0.75 * u, (20, 20, 20), max(1, round(1.5 * u))
    )
    draw_text(
        img, f"HP{hp}", (w - b - round(92 * u), b + round(28 * u)), 0.6 * u, (20, 20, 20), max(1, round(u))
    )
    draw_energy(img, (w - b - round(18 * u), b + round(20 * u)), round(11 * u), TYPES[ctype])
    # art window with an inner frame
    ax0, ay0, ax1, ay1 = b + round(10 * u), b + round(40 * u), w - b - round(10 * u), round(h * 0.52)
    cv2.rectangle(img, (ax0 - 3, ay0 - 3), (ax1 + 2, ay1 + 2), (205, 175, 90), -1)
    img[ay0:ay1, ax0:ax1] = cv2.resize(art, (ax1 - ax0, ay1 - ay0), interpolation=cv2.INTER_AREA)
    # species strip
    sy = ay1 + round(6 * u)
    cv2.rectangle(
        img, (ax0 + round(20 * u), sy), (ax1 - round(20 * u), sy + round(12 * u)), (230, 215, 160), -1
    )
    draw_text(
        img,
        f"NO.{rng.integers(1, 999):03d}  {name} Pokemon",
        (ax0 + round(26 * u), sy + round(10 * u)),
        0.3 * u,
        (60, 60, 60),
        1,
        cv2.FONT_HERSHEY_SIMPLEX,
    )
    # attacks
    y = sy + round(38 * u)
    for _ in range(int(rng.integers(1, 3))):
        for k in range(int(rng.integers(1, 4))):
            draw_energy(
                img,
                (ax0 + round((10 + 20 * k) * u), y - round(6 * u)),
                round(8 * u),
                TYPES[str(rng.choice(list(TYPES)))],
            )
        draw_text(img, _name(rng), (ax0 + round(75 * u), y), 0.6 * u, (20, 20, 20), max(1, round(1.2 * u)))
        draw_text(
            img,
            str(int(rng.integers(1, 25)) * 10),
            (ax1 - round(45 * u), y),
            0.65 * u,
            (20, 20, 20),
            max(1, round(1.2 * u)),
        )
        for li in range(int(rng.integers(1, 3))):  # description lines as text-like strokes
            yy = y + round((16 + 12 * li) * u)
            x = ax0 + round(6 * u)
            while x < ax1 - round(30 * u):
                wl = round(rng.integers(8, 40) * u)
                cv2.line(
                    img, (x, yy), (min(x + wl, ax1 - round(6 * u)), yy), (70, 70, 70), max(1, round(2 * u))
                )
                x += wl + round(6 * u)
        y += round(62 * u)
    # weakness / resistance / retreat row
    wy = round(h * 0.86)
    cv2.line(img, (ax0, wy - round(14 * u)), (ax1, wy - round(14 * u)), (90, 90, 90), 1, cv2.LINE_AA)
    for k, label in enumerate(("weakness", "resistance", "retreat")):
        draw_text(
            img, label, (ax0 + round(k * 105 * u), wy), 0.3 * u, (40, 40, 40), 1, cv2.FONT_HERSHEY_SIMPLEX
        )
        draw_energy(
            img,
            (ax0 + round((k * 105 + 75) * u), wy - round(4 * u)),
            round(6 * u),
            TYPES[str(rng.choice(list(TYPES)))],
        )
    # footer: illustrator, set symbol, number, rarity
    fy = h - b - round(10 * u)
    draw_text(
        img,
        f"Illus. {_name(rng)}",
        (ax0, fy - round(14 * u)),
        0.3 * u,
        (30, 30, 30),
        1,
        cv2.FONT_HERSHEY_SIMPLEX,
    )
    draw_set_symbol(img, (ax0 + round(10 * u), fy - round(2 * u)), round(6 * u), card_set.symbol)
    draw_text(img, f"{number}/{card_set.total:03d}", (ax0 + round(24 * u), fy), 0.4 * u, (20, 20, 20), 1)
    rar = RARITIES.index(rarity)
    draw_set_symbol(img, (ax1 - round(10 * u), fy - round(4 * u)), round(5 * u), 3 if rar >= 2 else rar)
    # transparent rounded corners
    alpha = np.zeros((h, w), np.uint8)
    r = round(18 * u)
    cv2.rectangle(alpha, (r, 0), (w - 1 - r, h - 1), 255, -1)
    cv2.rectangle(alpha, (0, r), (w - 1, h - 1 - r), 255, -1)
    for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
        cv2.circle(alpha, (cx, cy), r, 255, -1, cv2.LINE_AA)
    return np.dstack([img, alpha])


def generate_cards(n: int, seed: int = 0, height: int = 512, reprint_fraction: float = 0.2):
    """Yield ``(CardRecord, rgba)`` for ``n`` cards; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n_sets = max(1, min(6, n // 10))
    sets = [
        SetSpec(
            f"syn{i + 1}",
            f"Synthetic {_name(rng)}",
            BORDERS[i % len(BORDERS)],
            i,
            int(rng.integers(max(n, 60), 250)),
            f"20{20 + i:02d}-0{1 + i % 9}-15",
        )
        for i in range(n_sets)
    ]
    numbers = {s.id: 0 for s in sets}
    originals: list[dict] = []
    for i in range(n):
        crng = np.random.default_rng([seed, i])
        reprint = originals and crng.random() < reprint_fraction
        if reprint:
            base = originals[int(crng.integers(0, len(originals)))]
            kind = str(crng.choice(["new_set", "new_number"]))
            card_set = base["set"] if kind == "new_number" else sets[int(crng.integers(0, n_sets))]
            spec = {**base, "set": card_set, "reprint_of": base["id"]}
        else:
            art_seed = int(crng.integers(0, 2**31))
            ctype = str(crng.choice(list(TYPES)))
            spec = {
                "name": _name(crng),
                "ctype": ctype,
                "hp": int(crng.integers(3, 26)) * 10,
                "art_seed": art_seed,
                "rarity": str(crng.choice(RARITIES)),
                "set": sets[i % n_sets],
                "reprint_of": None,
            }
        card_set = spec["set"]
        numbers[card_set.id] += 1
        number = f"{numbers[card_set.id]:03d}"
        card_id = f"{card_set.id}-{numbers[card_set.id]}"
        art = render_art(np.random.default_rng(spec["art_seed"]), 240, 320)
        # Text details (attack names, damage) follow the art so reprints share them, like real reprints.
        rgba = render_card(
            height,
            spec["name"],
            spec["ctype"],
            spec["hp"],
            art,
            card_set,
            number,
            spec["rarity"],
            np.random.default_rng(spec["art_seed"] + 1),
        )
        if not reprint:
            originals.append({**spec, "id": card_id})
        rec = CardRecord(
            id=card_id,
            name=spec["name"],
            set_id=card_set.id,
            set_name=card_set.name,
            series="Synthetic",
            number=str(numbers[card_set.id]),
            rarity=spec["rarity"],
            supertype="Pokémon",
            subtypes=["Basic"],
            artist="cardid synth",
            release_date=card_set.release_date,
            set_total=card_set.total,
            image_url=None,
            image_file=f"images/{card_file_stem(card_id)}.png",
            art_id=f"art-{spec['art_seed']}",
            reprint_of=spec["reprint_of"],
        )
        yield rec, rgba


def render_stand_in(record: CardRecord, total: int | None = None, height: int = 512) -> np.ndarray:
    """A *stand-in* scan (RGBA) for a real catalog card that has none here: the synthetic layout
    carrying the card's real name, collector number and set (its total and a frame and symbol
    chosen by the set id). Art, type, HP and text are procedural, seeded by the card id: this is
    not what the card looks like, only something of the right kind to fill a DB of the real size."""
    crng = np.random.default_rng(zlib.crc32(record.id.encode()))
    srng = np.random.default_rng(zlib.crc32(record.set_id.encode()))
    card_set = SetSpec(
        record.set_id,
        record.set_name,
        BORDERS[int(srng.integers(0, len(BORDERS)))],
        int(srng.integers(0, 8)),
        int(total or srng.integers(60, 250)),
        record.release_date or "",
    )
    art_seed = int(crng.integers(0, 2**31))
    rarity = record.rarity if record.rarity in RARITIES else RARITIES[int(crng.integers(0, len(RARITIES)))]
    return render_card(
        height,
        record.name,
        str(crng.choice(list(TYPES))),
        int(crng.integers(3, 26)) * 10,
        render_art(np.random.default_rng(art_seed), 240, 320),
        card_set,
        record.number,
        rarity,
        np.random.default_rng(art_seed + 1),
    )


def synth_cards(
    out: str | Path,
    n: int = 200,
    seed: int = 0,
    height: int = 512,
    reprint_fraction: float = 0.2,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Catalog:
    """``cardid synth cards``: write a synthetic catalog (metadata, class index, RGBA PNG scans)."""
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite, kind="catalog") as tmp:
        recs = []
        for rec, rgba in generate_cards(n, seed, height, reprint_fraction):
            ok, buf = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
            assert ok
            write_bytes_atomic(tmp / rec.image_file, buf.tobytes())
            recs.append(rec)
            if progress:
                progress(1)
        Catalog(tmp, recs).save()
    return Catalog.load(out)
