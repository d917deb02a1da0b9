"""Pseudonyms: an id replaced by a keyed hash, the same in every extract made with the same secret.

HMAC-SHA256 keyed with a secret kept outside the data: without the secret a pseudonym cannot be
reversed or recomputed from a list of candidate ids (a plain hash of a student number could be, by
hashing every number). The secret is read from a file and never written anywhere; the manifest
records only a key identifier, so that an append made with another secret is refused rather than
producing strangers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path

from waymark.training.ingest.mapping.schema import Mapping, MappingError

MIN_SECRET_BYTES = 32
PSEUDONYM_HEX = 20  # 80 bits: collisions are out of reach for any student population


class SecretError(MappingError):
    """The pseudonymisation secret is missing, unreadable or too short."""


def read_secret_file(path: Path) -> bytes:
    """The secret in ``path`` (surrounding whitespace removed), at least ``MIN_SECRET_BYTES`` long.

    Raises
    ------
    SecretError
        When the file cannot be read or holds too short a secret.
    """
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise SecretError(f"the pseudonymisation secret file {path} cannot be read ({exc.strerror})") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            f"the secret in {path} is shorter than {MIN_SECRET_BYTES} bytes "
            f"(make one with `openssl rand -hex 32 > {path}`)"
        )
    return secret


def secret_for(mapping: Mapping, *, secret_file: Path | None) -> bytes | None:
    """The secret a mapping's pseudonymisation needs: ``secret_file``, else the mapping's own ``secret_file``.

    Returns None when the mapping pseudonymises nothing.

    Raises
    ------
    SecretError
        When the mapping pseudonymises and no secret file is given.
    """
    if mapping.pseudonymise is None:
        return None
    if secret_file is None and mapping.pseudonymise.secret_file is not None:
        base = mapping.path.parent if mapping.path is not None else Path()
        secret_file = base / mapping.pseudonymise.secret_file
    if secret_file is None:
        raise SecretError(
            f"the mapping pseudonymises {', '.join(mapping.pseudonymise.columns)}: give the secret's file "
            "with --secret-file (or WAYMARK_PSEUDONYM_SECRET_FILE, or pseudonymise.secret_file)"
        )
    return read_secret_file(secret_file)


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


_INTEGRAL = re.compile(r"^(-?[0-9]+)\.0+$")


def normalised_id(value: str) -> str:
    """An id as the importer reads it before hashing: trimmed, and ``150.0`` written as ``150``.

    Mirrors the importer's SQL (``convert.column_sql``); a test holds the two equal.
    """
    return _INTEGRAL.sub(r"\1", value.strip())


def id_pseudonymiser(secret: bytes) -> Callable[[str], str]:
    """From an id as written in any extract to the pseudonym the mapping importer gives it."""
    pseudonym = pseudonymiser(secret)

    def of(value: str) -> str:
        found = pseudonym(normalised_id(value))
        assert found is not None  # noqa: S101  # a str in gives a str out
        return found

    return of
