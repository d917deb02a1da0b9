"""A data folder's identity and manifest when Spark reads it, from a local path or a Hadoop URI.

A local path gives exactly what the DuckDB engine gives (``models.data.publish``: the sha256 of every
file's bytes, and the manifest read from disk). A URI (``s3a://``, ``abfss://``, ``hdfs://``,
``file://``) is read through the session's Hadoop FileSystem on the driver, which never reads the
data files whole: see ``fingerprint``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from waymark.models.data.publish import MANIFEST, folder_fingerprint, is_uri
from waymark.models.data.publish import read_manifest as read_local_manifest
from waymark.models.spark.files import hadoop_conf, hadoop_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Starts what a URI's fingerprint digests, so it can never be mistaken for a digest of bytes.
URI_FINGERPRINT_SCHEME = b"waymark folder metadata v1\n"


def fingerprint(folder: str | Path, session: SparkSession) -> str:
    """The data's identity: ``publish.folder_fingerprint`` for a local path; for a URI, from metadata.

    Parameters
    ----------
    folder
        A data folder: a local path, or a Hadoop URI the session can read.
    session
        The Spark session whose Hadoop configuration reaches the store.

    Returns
    -------
    str
        64 hex digits. For a local path the sha256 over every file's relative path and bytes, the
        value the DuckDB engine records (unchanged). For a URI the sha256 over every file's relative
        path, length and modification time, and the store's own checksum of the file where its
        FileSystem gives one (HDFS does; S3A only with ``fs.s3a.etag.checksum.enabled``; ABFS and
        local files do not). The manifest (``waymark-data.json``) is left out in both, as it
        describes the data rather than being it.

    Notes
    -----
    On a URI the identity comes from the store's metadata, not the bytes: hashing the bytes would
    bring every byte of the folder (billions of activity rows) through the driver before Spark
    reads them again on the executors. Object stores and HDFS replace a file whole, which sets its
    length and modification time anew, so a changed file changes the fingerprint; a file rewritten
    with identical length within the store's clock resolution (milliseconds) keeps it unless the
    store gives a checksum. The two kinds of fingerprint differ for the same files: a folder copied
    from a local path to a store gets a new identity.
    """
    if not is_uri(folder):
        return folder_fingerprint(Path(folder))
    root = hadoop_path(session, str(folder))
    fs = root.getFileSystem(hadoop_conf(session))
    digest = hashlib.sha256(URI_FINGERPRINT_SCHEME)
    if not fs.exists(root):  # as a missing local folder: nothing to digest (validation then says so)
        return digest.hexdigest()
    base = PurePosixPath(str(fs.makeQualified(root).toUri().getPath()))
    found = fs.listFiles(root, True)
    files = []
    while found.hasNext():
        status = found.next()
        path = status.getPath()
        relative = PurePosixPath(str(path.toUri().getPath())).relative_to(base).as_posix()
        if PurePosixPath(relative).name != MANIFEST:
            files.append((relative, int(status.getLen()), int(status.getModificationTime()), path))
    for relative, length, modified, path in sorted(files, key=lambda f: f[0]):
        digest.update(f"{relative}\t{length}\t{modified}\t{_checksum(fs, path)}\n".encode())
    return digest.hexdigest()


def _checksum(fs: Any, path: Any) -> str:
    """The FileSystem's checksum of ``path`` as ``algorithm:hex``, or "" when it gives none."""
    checksum = fs.getFileChecksum(path)
    if checksum is None:
        return ""
    return f"{checksum.getAlgorithmName()}:{bytes(checksum.getBytes()).hex()}"


def read_manifest(folder: str | Path, session: SparkSession) -> dict[str, Any]:
    """The folder's manifest (``publish.read_manifest``), through Hadoop for a URI; {} when it has none.

    Raises
    ------
    ValueError
        If the manifest is not JSON (naming the file).
    """
    if not is_uri(folder):
        return read_local_manifest(Path(folder))
    root = hadoop_path(session, str(folder))
    fs = root.getFileSystem(hadoop_conf(session))
    path = hadoop_path(session, str(folder).rstrip("/") + "/" + MANIFEST)
    if not fs.exists(path) or not fs.getFileStatus(path).isFile():
        return {}
    stream = fs.open(path)
    try:
        text = bytes(stream.readAllBytes()).decode("utf-8")
    finally:
        stream.close()
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the manifest is not JSON ({exc})") from exc
    return data
