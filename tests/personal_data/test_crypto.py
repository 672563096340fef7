"""The at-rest encryption primitives: both ciphers, authentication, keys outside the database, rotation,
the blind index (not yet wired into the person table)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat

import polars as pl
import pytest

from aidgraph.core.storage.crypto import (DataKeyError, Undecryptable, add_key, hmac_sha256_hex, hmac_sha256_hex_expr,
                                          load_keyring, sha256_hex_expr)

ID = "44010619660606123X"


@pytest.mark.parametrize("cipher", ["AES-256-GCM", "SM4-GCM"])
def test_round_trip_and_authentication(cipher, tmp_path):
    ring = load_keyring({"AIDGRAPH_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
                         "AIDGRAPH_DATA_CIPHER": cipher})
    stored = ring.encrypt(ID, "person.id_number")
    assert ID not in stored and stored.startswith(f"v1:k1:{cipher}:")
    assert ring.encrypt(ID, "person.id_number") != stored  # a fresh nonce each time
    assert ring.decrypt(stored, "person.id_number") == ID
    with pytest.raises(Undecryptable):
        ring.decrypt(stored, "person.phone")  # moved to another column
    prefix, body = stored.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(Undecryptable):
        ring.decrypt(f"{prefix}:{base64.b64encode(bytes(raw)).decode()}", "person.id_number")


def test_bad_keys_are_clear_errors(tmp_path):
    with pytest.raises(DataKeyError, match="production needs"):
        load_keyring({}, production=True)
    with pytest.raises(DataKeyError, match="at least 32"):
        load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(16).hex()}, production=True)
    with pytest.raises(DataKeyError, match="neither hex nor base64"):
        load_keyring({"AIDGRAPH_DATA_KEY": "not a key!"})
    with pytest.raises(DataKeyError, match="AIDGRAPH_DATA_CIPHER"):
        load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(32).hex(), "AIDGRAPH_DATA_CIPHER": "DES"})


def test_development_key_is_generated_outside_the_checkout_once(tmp_path):
    ring = load_keyring({}, state_dir=tmp_path / "state")
    path = tmp_path / "state" / "data.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_keyring({}, state_dir=tmp_path / "state")
    assert again.decrypt(ring.encrypt(ID, "c"), "c") == ID


def test_rotation_keeps_old_values_readable_and_is_resumable(tmp_path):
    env = {"AIDGRAPH_DATA_KEY_FILE": str(tmp_path / "keys")}
    (tmp_path / "keys").write_text(f"k1:{base64.b64encode(os.urandom(32)).decode()}\n", encoding="utf-8")
    old = load_keyring(env)
    values = [old.encrypt(f"{ID[:-2]}{i:02d}", "person.id_number") for i in range(10)]
    index_before = old.blind_index(ID, "person.id_number")
    assert add_key(tmp_path / "keys") == "k2"
    ring = load_keyring(env)
    assert ring.current == "k2" and ring.blind_index(ID, "person.id_number") == index_before
    half = [ring.reencrypt(v, "person.id_number") for v in values[:5]] + values[5:]  # interrupted half-way
    assert [ring.decrypt(v, "person.id_number") for v in half] == [f"{ID[:-2]}{i:02d}" for i in range(10)]
    done = [ring.reencrypt(v, "person.id_number") for v in half]  # resumed
    assert all(ring.key_id_of(v) == "k2" for v in done) and done[:5] == half[:5]


def test_blind_index_is_keyed_and_normalised():
    a = load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(32).hex()})
    b = load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(32).hex()})
    assert a.blind_index(ID, "person.id_number") == a.blind_index(ID.lower() + " ", "person.id_number")
    assert a.blind_index(ID, "person.id_number") != b.blind_index(ID, "person.id_number")
    assert a.blind_index(ID, "person.id_number") != a.blind_index(ID, "person.phone")


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_the_precomputed_hmac_is_the_standard_hmac(key_length):
    """``hmac_sha256_hex`` (the feed import's per-row HMAC, from precomputed pads) gives the standard library's
    HMAC-SHA256 for keys shorter than, as long as and longer than the hash's block, and any message."""
    key = os.urandom(key_length)
    mac = hmac_sha256_hex(key)
    for message in [b"", b"a", ID.encode(), "张三|440106|税务".encode(), os.urandom(64), os.urandom(1000)]:
        assert mac(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_the_batch_hashers_give_what_the_one_value_functions_give():
    ring = load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(32).hex()})
    index = ring.blind_indexer("person.id_number")
    for value in [ID, ID.lower() + " ", "110101199003077777", ""]:
        assert index(value) == ring.blind_index(value, "person.id_number")
    keyed = ring.keyed_hasher("feed row")
    assert keyed("row") != ring.keyed_hasher("another label")("row")
    assert keyed("row") != index("row") and len(keyed("row")) == 64


MESSAGES = ["", "a", ID, "张三\x1f440106\x1f税务\x1f123456", "x" * 55, "y" * 56, "z" * 64, "w" * 1000]


def test_the_column_hashes_are_the_standard_ones():
    """``sha256_hex_expr`` (polars, in Rust) hashes a text value's UTF-8 bytes and a binary value's bytes as
    hashlib does, across SHA-256's padding boundaries (55, 56, 64 bytes); null stays null."""
    raw = [os.urandom(n) for n in (0, 1, 55, 56, 64, 119, 1000)]
    text = pl.DataFrame({"m": [*MESSAGES, None]}).select(sha256_hex_expr(pl.col("m")))["m"].to_list()
    assert text == [hashlib.sha256(m.encode()).hexdigest() for m in MESSAGES] + [None]
    binary = pl.DataFrame({"m": raw}, schema={"m": pl.Binary}).select(sha256_hex_expr(pl.col("m")))["m"].to_list()
    assert binary == [hashlib.sha256(m).hexdigest() for m in raw]


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_the_column_hmac_is_the_standard_hmac(key_length):
    """``hmac_sha256_hex_expr`` (the feed import's HMAC over whole columns) gives the standard library's
    HMAC-SHA256 for keys shorter than, as long as and longer than the block, keys that are not text, any message."""
    key = os.urandom(key_length)
    got = pl.DataFrame({"m": [*MESSAGES, None]}).select(hmac_sha256_hex_expr(key, pl.col("m")).alias("h"))["h"].to_list()
    assert got == [hmac.new(key, m.encode(), hashlib.sha256).hexdigest() for m in MESSAGES] + [None]


def test_the_column_hashers_give_what_the_one_value_functions_give():
    """The keyring's column forms (the feed import's row hashes and ID-number lookups, the seed's blind indexes)
    equal its one-value forms, normalisation of an ID number included."""
    ring = load_keyring({"AIDGRAPH_DATA_KEY": os.urandom(32).hex()})
    numbers = [ID, ID.lower(), " " + ID.lower() + " \t", "110101199003077777", ""]
    frame = pl.DataFrame({"v": numbers})
    assert frame.select(ring.blind_index_expr(pl.col("v"), "person.id_number").alias("h"))["h"].to_list() == \
        [ring.blind_index(n, "person.id_number") for n in numbers]
    assert frame.select(ring.keyed_hash_expr(pl.col("v"), "feed row").alias("h"))["h"].to_list() == \
        [ring.keyed_hasher("feed row")(n) for n in numbers]
    assert frame.select(ring.keyed_hash_expr(pl.col("v"), "feed row").alias("h"))["h"].to_list() != \
        frame.select(ring.keyed_hash_expr(pl.col("v"), "another label").alias("h"))["h"].to_list()
