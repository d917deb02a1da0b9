"""Pseudonyms: an id replaced by a keyed hash, the same in every extract made with the same secret.

HMAC-SHA256 keyed with a secret kept outside the data: without the secret a pseudonym cannot be
reversed or recomputed from a list of candidate ids (a plain hash of a student number could be, by
hashing every number). The secret is read from a file and never written anywhere; the manifest
records only a key identifier, so that an append made with another secret is refused rather than
producing strangers.
"""

from __future__ import annotations

from pathlib import Path

from waymark.models.pseudonyms import (  # the function itself lives where the service can use it too
    MIN_SECRET_BYTES,
    SecretFileError,
    id_pseudonymiser,
    key_id,
    normalised_id,
    pseudonymiser,
    secret_in,
)
from waymark.training.ingest.mapping.schema import Mapping, MappingError

__all__ = [
    "MIN_SECRET_BYTES",
    "SecretError",
    "id_pseudonymiser",
    "key_id",
    "normalised_id",
    "pseudonymiser",
    "read_secret_file",
    "secret_for",
]


class SecretError(MappingError):
    """The pseudonymisation secret is missing, unreadable or too short."""


def read_secret_file(path: Path) -> bytes:
    """``models.pseudonyms.secret_in``, refusing as a mapping error (``SecretError``) names it."""
    try:
        return secret_in(path)
    except SecretFileError as exc:
        raise SecretError(str(exc)) from exc


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
