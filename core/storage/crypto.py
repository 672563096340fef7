"""Encryption of personal data at rest (PIPL Art. 51: 采取相应的加密、去标识化等安全技术措施): the building blocks.

An authenticated cipher, chosen by setting (``AIDGRAPH_DATA_CIPHER``): ``AES-256-GCM`` or ``SM4-GCM`` (the
national standard GB/T 32907, where a province requires it), both from the maintained ``cryptography`` library
(OpenSSL). A stored value is ``v1:<key id>:<cipher>:<base64 nonce+ciphertext+tag>``, so values written under an
older key stay readable after rotation and a rotation can resume where it stopped. The associated data binds a
value to its column (``person.id_number``), so a ciphertext copied into another column does not decrypt.

Exact lookup and uniqueness use a keyed blind index (HMAC-SHA256 under a key derived with HKDF from the index
key, never the data key), so equal ID numbers have equal indexes without the database learning the number.

Keys never live in the database or the repository: ``AIDGRAPH_DATA_KEY`` (one key, base64 or hex, 32 bytes; or
a key list ``k1:<key> k2:<key>``, for deployments that hold secrets in the environment and still rotate) or
``AIDGRAPH_DATA_KEY_FILE`` (one ``<id>:<base64 key>`` per line). In both lists the last entry is the current
key, the first the index key, and older entries decrypt what they wrote. Production refuses to start without one, or with a short one;
development generates a key file in the state directory (outside the checkout) on first use.

Status: wired. ``person.id_number``, ``person.phone`` and ``lead.id_number`` are stored encrypted and
``person.id_number_index`` holds the blind index (migration 0012, which encrypts existing rows);
``feed_record.row_hash`` is a keyed hash (migration 0014 rehashes existing rows); the column type,
the batch helpers and key rotation are in :mod:`aidgraph.core.storage.encrypted`, the command in
``aidgraph keys``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from polars_hash import CryptographicHashingNameSpace

CIPHERS = ("AES-256-GCM", "SM4-GCM")
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT = "v1"


class DataKeyError(RuntimeError):
    """A data key is missing, short or malformed; or a value names a key this deployment does not have."""


class Undecryptable(ValueError):
    """A stored value failed authentication (changed, moved to another column, or the wrong key)."""


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    for encoding in ("hex", "base64"):
        try:
            key = bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
        except (ValueError, binascii.Error):
            continue
        if len(key) < KEY_BYTES:
            raise DataKeyError(f"{where}: the data key has {len(key)} bytes; at least {KEY_BYTES} are required")
        return key
    raise DataKeyError(f"{where}: the data key is neither hex nor base64")


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (RFC 2104): the key, hashed if longer than a block, padded with
    zeros to SHA-256's 64-byte block, XORed with 0x36 and with 0x5C."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


def hmac_sha256_hex(key: bytes) -> Callable[[bytes], str]:
    """HMAC-SHA256 under ``key`` (RFC 2104) as a function of the message, hex; the same value as
    ``hmac.new(key, message, hashlib.sha256).hexdigest()``.

    For values one at a time; whole columns go through :func:`hmac_sha256_hex_expr`. The inner and outer hashes
    of the padded key are computed once and copied per message: 0.80 us a value, against 1.23 us copying a keyed
    ``hmac`` object and 1.68 us for the one-shot ``hmac.digest`` (300,000 values, this machine).
    """
    inner_pad, outer_pad = _hmac_pads(key)
    inner = hashlib.sha256(inner_pad)
    outer = hashlib.sha256(outer_pad)

    def mac(message: bytes) -> str:
        state = inner.copy()
        state.update(message)
        result = outer.copy()
        result.update(state.digest())
        return result.hexdigest()

    return mac


def sha256_hex_expr(values: pl.Expr) -> pl.Expr:
    """SHA-256 (hex) of each value of a text (its UTF-8 bytes) or binary column, computed by polars: the
    polars-hash plugin's hash, in Rust, with no Python call per value. Null stays null."""
    return CryptographicHashingNameSpace(values).sha2_256()


def hmac_sha256_hex_expr(key: bytes, message: pl.Expr) -> pl.Expr:
    """:func:`hmac_sha256_hex` of each value of a text (its UTF-8 bytes) or binary column, as a polars
    expression: ``sha256(outer pad + sha256(inner pad + message))`` with both hashes by :func:`sha256_hex_expr`.
    Null stays null; the result is named ``literal`` (alias it).

    The feed import hashes every row of a month's files and the blind index of every ID number they name (3.2
    million rows for the 5,000,000-person benchmark province): one Python call a value cost 1.9 us with the
    encoding and slicing around it; bench/README.md has the import's figures. The plugin's own ``hmac_sha256``
    takes its key as text, which a random key is not, hence the two hashes here.
    """
    inner_pad, outer_pad = _hmac_pads(key)
    inner = sha256_hex_expr(pl.lit(inner_pad, dtype=pl.Binary) + message.cast(pl.Binary))
    return sha256_hex_expr(pl.lit(outer_pad, dtype=pl.Binary) + inner.str.decode("hex"))


@functools.lru_cache(maxsize=64)
def _derive(key: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


@dataclass(frozen=True)
class Keyring:
    keys: Mapping[str, bytes]  # id -> 32-byte master key
    current: str
    index_key_id: str
    cipher: str = "AES-256-GCM"

    def __post_init__(self) -> None:
        if self.cipher not in CIPHERS:
            raise DataKeyError(f"AIDGRAPH_DATA_CIPHER must be one of {', '.join(CIPHERS)}, not {self.cipher!r}")

    # --- values ---------------------------------------------------------------------------------------

    def _cipher_key(self, key_id: str, cipher: str) -> bytes:
        master = self.keys.get(key_id)
        if master is None:
            raise DataKeyError(f"no data key {key_id!r} in this deployment's keyring")
        return _derive(master, f"aidgraph data {cipher}".encode(), 32 if cipher == "AES-256-GCM" else 16)

    def encrypt(self, plaintext: str, column: str) -> str:
        key = self._cipher_key(self.current, self.cipher)
        nonce = os.urandom(NONCE_BYTES)
        aad = column.encode()
        data = plaintext.encode("utf-8")
        if self.cipher == "AES-256-GCM":
            sealed = AESGCM(key).encrypt(nonce, data, aad)
        else:
            enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            sealed = enc.update(data) + enc.finalize() + enc.tag
        return f"{FORMAT}:{self.current}:{self.cipher}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, column: str) -> str:
        try:
            version, key_id, cipher, body = stored.split(":", 3)
        except ValueError:
            raise Undecryptable("not an encrypted value") from None
        if version != FORMAT or cipher not in CIPHERS:
            raise Undecryptable(f"unknown format {version}:{cipher}")
        raw = base64.b64decode(body)
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        key = self._cipher_key(key_id, cipher)
        aad = column.encode()
        try:
            if cipher == "AES-256-GCM":
                data = AESGCM(key).decrypt(nonce, sealed, aad)
            else:
                dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, sealed[-TAG_BYTES:])).decryptor()
                dec.authenticate_additional_data(aad)
                data = dec.update(sealed[:-TAG_BYTES]) + dec.finalize()
        except InvalidTag:
            raise Undecryptable(f"a {column} value failed authentication") from None
        return data.decode("utf-8")

    def key_id_of(self, stored: str) -> str:
        return stored.split(":", 2)[1]

    def needs_rotation(self, stored: str) -> bool:
        """Was this value written under another key or cipher than the current ones?"""
        _, key_id, cipher, _ = stored.split(":", 3)
        return key_id != self.current or cipher != self.cipher

    def reencrypt(self, stored: str, column: str) -> str:
        return self.encrypt(self.decrypt(stored, column), column) if self.needs_rotation(stored) else stored

    # --- blind index ----------------------------------------------------------------------------------

    def blind_indexer(self, column: str) -> Callable[[str], str]:
        """:meth:`blind_index` for one column as a function, its key derived once (the feed import's hot path)."""
        mac = hmac_sha256_hex(_derive(self.keys[self.index_key_id], f"aidgraph blind index {column}".encode(), 32))

        def index(value: str) -> str:
            return mac(value.strip().upper().encode("utf-8"))

        return index

    def keyed_hasher(self, label: str) -> Callable[[str], str]:
        """HMAC-SHA256 (hex) of a value as given, under a key derived from the index key for ``label``.

        For values that are not looked up by themselves but must not be recomputable without the key (a feed
        row's hash, whose row holds an ID number: an unkeyed hash of it could be inverted by trying every ID
        number). Like the blind index it keeps its key across data-key rotations; each label derives its own key,
        so no two uses share one.
        """
        mac = hmac_sha256_hex(_derive(self.keys[self.index_key_id], f"aidgraph keyed hash {label}".encode(), 32))

        def keyed(value: str) -> str:
            return mac(value.encode("utf-8"))

        return keyed

    def blind_index_expr(self, values: pl.Expr, column: str) -> pl.Expr:
        """:meth:`blind_indexer` over a text column, computed by polars (:func:`hmac_sha256_hex_expr`): the same
        index for each value whose surrounding whitespace is what Python's ``str.strip`` removes, which an ID
        number's (ASCII) always is."""
        key = _derive(self.keys[self.index_key_id], f"aidgraph blind index {column}".encode(), 32)
        return hmac_sha256_hex_expr(key, values.str.strip_chars().str.to_uppercase())

    def keyed_hash_expr(self, values: pl.Expr, label: str) -> pl.Expr:
        """:meth:`keyed_hasher` over a text column, computed by polars (:func:`hmac_sha256_hex_expr`)."""
        return hmac_sha256_hex_expr(_derive(self.keys[self.index_key_id], f"aidgraph keyed hash {label}".encode(),
                                            32), values)

    def blind_index(self, value: str, column: str) -> str:
        """HMAC-SHA256 of the normalised value under a key derived from the index key (stable across data-key
        rotations): equal values, equal indexes; nothing else learnt."""
        key = _derive(self.keys[self.index_key_id], f"aidgraph blind index {column}".encode(), 32)
        return hmac.digest(key, value.strip().upper().encode("utf-8"), "sha256").hex()


def load_keyring(environ: Mapping[str, str] | None = None, *, production: bool = False,
                 state_dir: Path | None = None) -> Keyring:
    """The deployment's keyring from ``AIDGRAPH_DATA_KEY`` or ``AIDGRAPH_DATA_KEY_FILE``.

    Production without either (or with a short key) raises :class:`DataKeyError`. Development without either
    generates ``<state_dir>/data.key`` (mode 0600) on first use and reads it afterwards.
    """
    env = os.environ if environ is None else environ
    cipher = env.get("AIDGRAPH_DATA_CIPHER", "AES-256-GCM").strip().upper()
    if env.get("AIDGRAPH_DATA_KEY"):
        text = env["AIDGRAPH_DATA_KEY"]
        if ":" not in text:  # one key (hex or base64 never hold a colon): key k1
            return Keyring({"k1": _decode_key(text, "AIDGRAPH_DATA_KEY")}, "k1", "k1", cipher)
        # a key list, the key file's lines on one line: "k1:<key> k2:<key>" (spaces or commas between entries)
        entries = [("AIDGRAPH_DATA_KEY, entry " + str(n), entry)
                   for n, entry in enumerate(text.replace(",", " ").split(), 1)]
        return _keyring_of(entries, "AIDGRAPH_DATA_KEY", cipher)
    path = Path(env["AIDGRAPH_DATA_KEY_FILE"]) if env.get("AIDGRAPH_DATA_KEY_FILE") else None
    if path is None:
        if production:
            raise DataKeyError("production needs AIDGRAPH_DATA_KEY or AIDGRAPH_DATA_KEY_FILE (32 random bytes, "
                            "kept outside the database and the repository)")
        if state_dir is None:
            raise DataKeyError("no data key configured and no state directory to keep a development key in")
        path = state_dir / "data.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"k1:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}\n")
    lines = [(f"{path}, line {n}", line.strip())
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]
    return _keyring_of([(where, line) for where, line in lines if line and not line.startswith("#")], str(path),
                       cipher)


def _keyring_of(entries: list[tuple[str, str]], source: str, cipher: str) -> Keyring:
    """A keyring from ``<id>:<base64 or hex key>`` entries in order: the last is the current key, the first the
    index key (each entry named by ``where`` in errors)."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for where, entry in entries:
        key_id, sep, text = entry.partition(":")
        if not sep or not key_id.isalnum():
            raise DataKeyError(f"{where}: expected '<id>:<base64 key>'")
        if key_id in keys:
            raise DataKeyError(f"{where}: key id {key_id!r} appears twice")
        keys[key_id] = _decode_key(text, where)
        order.append(key_id)
    if not order:
        raise DataKeyError(f"{source}: no key")
    return Keyring(keys, order[-1], order[0], cipher)


def next_key_entry(ring: Keyring) -> str:
    """A fresh key as a key-list entry ``k<n>:<base64>``, its id the next one free in ``ring``."""
    n = len(ring.keys) + 1
    while f"k{n}" in ring.keys:
        n += 1
    return f"k{n}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def key_list(ring: Keyring) -> str:
    """The keyring written as an ``AIDGRAPH_DATA_KEY`` key list, index key first and current key last."""
    rest = [k for k in ring.keys if k not in (ring.index_key_id, ring.current)]
    order = [ring.index_key_id, *rest] + ([ring.current] if ring.current != ring.index_key_id else [])
    return " ".join(f"{k}:{base64.b64encode(ring.keys[k]).decode()}" for k in order)


def add_key(path: Path) -> str:
    """Append a fresh key to a key file (it becomes the current one); return its id. Rotation then re-encrypts
    stored values in batches with :meth:`Keyring.reencrypt` (resumable: values already under the current key
    are left alone)."""
    existing = [line.split(":", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if ":" in line]
    n = len(existing) + 1
    while f"k{n}" in existing:
        n += 1
    with path.open("a", encoding="utf-8") as f:
        f.write(f"k{n}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}\n")
    return f"k{n}"
