"""Which gallery cards show the same art (cardid.db.art), on a hand-made DB."""

import numpy as np
from tests.db.handmade import HASHES, HandDB

from cardid.db.art import ArtRelations, same_card_rows, similar_scans

CARDS = [
    {"id": "a1", "name": "Gastly", "art_id": "g1"},
    {"id": "a2", "name": "Gastly", "art_id": "g1"},  # a reprint of a1's art
    {"id": "a3", "name": "Gastly", "art_id": "g2"},  # Fossil's: the same name, other art
    {"id": "b", "name": "Haunter", "art_id": "g1"},  # hand-made oddity: another name, a1's art id
    {"id": "c", "name": "Gengar", "art_id": "x"},
    {"id": "d", "name": "Onix", "art_id": "y"},
]


def _db():
    hashes = HASHES[: len(CARDS)]
    hashes[4] = hashes[0] ^ 0b1111111111  # Gengar's scan: 10 bits from a1's (near-identical)
    hashes[5] = hashes[0] ^ (0b11111111111 << 40)  # Onix's: 11 bits (not), 21 from Gengar's
    e = np.eye(len(CARDS), 8)
    e[3] = e[0] * 0.95 + e[3] * 0.31  # Haunter's embedding: cosine 0.95 with a1's
    return HandDB(CARDS, e, hashes)


def test_similar_scans_by_phash_bits_or_embedding():
    db = _db()
    assert similar_scans(db, 0) == [0, 3, 4]  # itself, Haunter (cosine 0.95), Gengar (10 bits)
    assert similar_scans(db, 0, cosine=None) == [0, 4]  # pHash only
    assert similar_scans(db, 0, [1, 2, 5]) == []


def test_same_card_rows_are_name_art_id_and_phash():
    db = _db()
    # the name (a1 a2 a3), the art id (Haunter), the pHash (Gengar); never the embedding alone
    assert same_card_rows(db, 0) == {0, 1, 2, 3, 4}
    assert same_card_rows(db, 5) == {5}


def test_art_relations_by_art_id_and_printings_sharing_it():
    art = ArtRelations(_db())
    assert not art.differs(0, 1) and art.differs(0, 2) and art.differs(2, 1)
    assert art.printings(0) == {0, 1}  # same name and same art: Fossil's Gastly is not one
    assert art.printings(2) == {2}


def test_every_matcher_on_one_db_shares_the_pairs_compared():
    """A pair's answer depends on its two scans only: an evaluation's simulated views, its photos
    and each fold's matcher compare it once, and another DB starts afresh."""
    db, other = _db(), _db()
    first, second = ArtRelations(db), ArtRelations(db)
    first._differs[(0, 2)] = True
    assert second._differs == {(0, 2): True} and ArtRelations(other)._differs == {}
