"""Write a data folder so that readers see the old folder or the new one, never half of either.

Writers fill a hidden staging folder beside the destination. Only when the writer has finished
(and, for imports, the result passes the contract) is the staging folder swapped into place. A
failure or an interruption leaves the destination exactly as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from waymark.models.data.contract import CONTRACT_VERSION, TABLES

MANIFEST = "waymark-data.json"


class OutputFolderError(Exception):
    """The destination cannot safely be replaced."""


def _is_replaceable(out: Path) -> bool:
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    entries = list(out.iterdir())
    return not entries or (out / MANIFEST).is_file()


@contextlib.contextmanager
def staged_folder(out: Path, check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a staging folder; on success (and a passing ``check``) it replaces ``out``.

    Parameters
    ----------
    out
        Destination. It must not exist, be empty, or be an earlier Waymark data folder (one with a
        manifest): Waymark never replaces a folder it did not write.
    check
        Called with the staging folder before it is published; raise to refuse publication.
    """
    out = out.resolve()
    if not _is_replaceable(out):
        raise OutputFolderError(
            f"{out} exists and is not a Waymark data folder (no {MANIFEST}); choose an empty or "
            "new folder so that nothing else is overwritten"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        yield stage
        if check is not None:
            check(stage)
        _swap(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap(stage: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(stage, out)
    except OSError:
        if old.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_manifest(folder: Path, source: str, *, details: dict[str, Any]) -> None:
    """Record where a data folder came from (read by training for lineage)."""
    manifest = {
        "contract_version": CONTRACT_VERSION,
        "source": source,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": sorted(t for t in TABLES if any(folder.glob(f"{t}*"))),
        **details,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a data folder, or an empty dict when it has none."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def is_uri(folder: str | Path) -> bool:
    """True for a Hadoop URI (``scheme://...``: ``s3a://``, ``abfss://``, ``hdfs://``, ``file://``)."""
    return isinstance(folder, str) and "://" in folder


def local_folder(folder: str | Path) -> Path:
    """``folder`` as a path on this machine.

    Raises
    ------
    ValueError
        If ``folder`` is a Hadoop URI: only the Spark engine reads one (``--engine spark``).
    """
    if is_uri(folder):
        raise ValueError(
            f"{folder} is a URI; a data folder given as a URI (s3a://, abfss://, hdfs://, file://) is "
            "read only by the Spark engine (--engine spark); otherwise give a local folder"
        )
    return Path(folder)


def folder_fingerprint(folder: Path) -> str:
    """sha256 over every file of a data folder (relative paths and bytes): the data's identity.

    A folder given as a URI on Spark has a fingerprint from the store's metadata instead
    (``models.spark.location.fingerprint``).
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
