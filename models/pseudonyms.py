"""Pseudonyms: an id replaced by a keyed hash, the same in every extract made with the same secret.

HMAC-SHA256 keyed with a secret kept outside the data: without the secret a pseudonym cannot be
reversed or recomputed from a list of candidate ids (a plain hash of a student number could be, by
hashing every number). The importer (``training.ingest.mapping``) gives student numbers these
pseudonyms; the relationship and directory imports, and the service when it signs a student in, put
a number through the same function so that it names the same student.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

MIN_SECRET_BYTES = 32
PSEUDONYM_HEX = 20  # 80 bits: collisions are out of reach for any student population
_PSEUDONYM = re.compile(rf"^p[0-9a-f]{{{PSEUDONYM_HEX}}}$")
_INTEGRAL = re.compile(r"^(-?[0-9]+)\.0+$")


class SecretFileError(ValueError):
    """The pseudonymisation secret's file cannot be read or holds too short a secret."""


def secret_in(path: Path) -> bytes:
    """The secret in ``path`` (surrounding whitespace removed), at least ``MIN_SECRET_BYTES`` long.

    Raises
    ------
    SecretFileError
        When the file cannot be read or holds too short a secret.
    """
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SecretFileError(
            f"the pseudonymisation secret file {path} cannot be read ({exc.strerror})"
        ) from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretFileError(
            f"the secret in {path} is shorter than {MIN_SECRET_BYTES} bytes "
            f"(make one with `openssl rand -hex 32 > {path}`)"
        )
    return secret


def pseudonymiser(secret: bytes) -> Callable[[str | None], str | None]:
    """A function from an id to its pseudonym (``p`` and the first 20 hex digits of the HMAC)."""

    def pseudonym(value: str | None) -> str | None:
        if value is None:
            return None
        digest = hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return "p" + digest[:PSEUDONYM_HEX]

    return pseudonym


def key_id(secret: bytes) -> str:
    """An identifier of the secret that reveals nothing of it (HMAC of a fixed text)."""
    return hmac.new(secret, b"waymark pseudonym key identifier", hashlib.sha256).hexdigest()[:16]


def normalised_id(value: str) -> str:
    """An id as the importer reads it before hashing: trimmed, composed (NFC), ``150.0`` as ``150``.

    Mirrors the importer's SQL (``convert.column_sql``); a test holds the two equal. Digits of other
    scripts are kept as written: reading them as 0 to 9 would give every student already imported
    with such an id another one (and another pseudonym), past their erasure or objection (a
    reviewer's finding); a mapping's ``replace`` brings one export's digits to another's.
    """
    return without_decimal_zeros(unicodedata.normalize("NFC", value.strip()))


def without_decimal_zeros(value: str) -> str:
    """``value`` less the decimal zeros a spreadsheet gives a whole number (``23000374.0``), else as it is."""
    return _INTEGRAL.sub(r"\1", value)


#: Where DuckDB's per-letter case mapping differs from Python's whole-string one: Python writes "ß" in
#: upper case as "SS" and "İ" in lower case as "i" with a combining dot.
_ONE_LETTER = {("\u00df", True): "\u1e9e", ("\u0130", False): "i"}


def in_case(value: str, case: str | None) -> str:
    """``value`` in a mapping's ``case``, letter by letter as the importer's SQL writes it.

    Mirrors ``convert._cased`` (DuckDB's ``upper`` and ``lower``; Turkish pairs the dotted i with İ and
    the dotless one with I); a test holds the two equal. For a sign-in's number, so that it meets the
    records' (``WAYMARK_STUDENT_ID_CASE``).
    """
    if case is None:
        return value
    upper = case in ("upper", "turkish-upper")
    if case == "turkish-upper":
        value = value.replace("i", "\u0130")
    elif case == "turkish-lower":
        value = value.replace("I", "\u0131").replace("\u0130", "i")
    return "".join(_letter(c, upper=upper) for c in value)


def _letter(c: str, *, upper: bool) -> str:
    mapped = c.upper() if upper else c.lower()
    return mapped if len(mapped) == 1 else _ONE_LETTER.get((c, upper), c)


def id_pseudonymiser(secret: bytes) -> Callable[[str], str]:
    """From an id as written in any extract to the pseudonym the mapping importer gives it."""
    pseudonym = pseudonymiser(secret)

    def of(value: str) -> str:
        found = pseudonym(normalised_id(value))
        assert found is not None  # noqa: S101  # a str in gives a str out
        return found

    return of


def is_pseudonym(value: str) -> bool:
    """Whether ``value`` has the form of a pseudonym (``p`` and 20 lowercase hex digits)."""
    return _PSEUDONYM.match(value) is not None
