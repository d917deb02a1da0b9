"""A data folder's files read by Spark as the raw tables validation checks (columns, ``_file``, ``_row``).

A folder is a local path or a Hadoop URI (``s3a://``, ``abfss://``, ``hdfs://``, ``file://``).

* A local path is located and pre-checked on this machine exactly as on DuckDB (``models.data.reading``:
  empty file, UTF-8 throughout, separator, repeated header column, DuckDB's strict CSV parse with the
  line of every malformed row, Parquet marker and footer, parts with the same columns). Spark then reads
  the same paths, so executors must see them (local mode, or a shared file system).
* A URI is listed through Spark's Hadoop FileSystem, and its files are checked through it without
  reading them whole on the driver: empty file, UTF-8 of the first MiB only, separator and repeated
  header column (from that first MiB), Parquet marker and footer of every part, parts with the same
  columns. Rows of a CSV file with more or fewer fields than its header are found by Spark's parser
  (``malformed_row``, with their row numbers; the message cannot quote DuckDB's reason); a byte that
  is not UTF-8 after the first MiB is not reported (Spark reads it as U+FFFD).

CSV files are read with every column as text, ``"`` as quote and escape, and values may hold line
breaks, so a CSV file is read by one task: use a folder of Parquet parts for large tables.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from waymark.models.data.contract import Table
from waymark.models.data.findings import Example, Finding
from waymark.models.data.publish import is_uri
from waymark.models.data.reading import (
    FolderListing,
    OpenedTable,
    Source,
    check_csv,
    check_header,
    check_parquet,
    empty_csv_finding,
    first_invalid_utf8,
    first_line_of,
    locate,
    locate_in,
    not_utf8_finding,
    parquet_problem,
)
from waymark.models.threads import duckdb_connect

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_HEAD_BYTES = 1 << 20  # the start of a CSV file read through a Hadoop file system for its header
_CORRUPT = "_corrupt_record"
_PARTITION_BITS = 33  # monotonically_increasing_id: partition index above bit 33, row within below
_MAX_MALFORMED_EXAMPLES = 100


@dataclass
class SparkFolder:
    """A data folder as Spark reads it: where its files are, and how to list and open them."""

    given: str  # as the caller wrote it, for the report
    root: Path  # the local path, or the path part of the URI
    session: SparkSession
    prefix: str = ""  # scheme://authority of a URI; "" for a local path
    _entries: dict[str, tuple[bool, int]] = field(default_factory=dict)  # name -> (is a file, size)

    @property
    def local(self) -> bool:
        """True when the folder is a path on this machine."""
        return not self.prefix

    def uri(self, path: Path) -> str:
        """What Spark reads for ``path``: the local path, or the URI."""
        return self.prefix + path.as_posix() if self.prefix else str(path)

    def entries(self) -> list[str]:
        """The names directly in the folder."""
        return sorted(self._entries) if self.prefix else [p.name for p in self.root.iterdir()]

    def locate(self, table: Table) -> tuple[Source | None, list[Finding]]:
        """``reading.locate`` of ``table``, through the Hadoop file system for a URI."""
        if self.local:
            return locate(self.root, table)
        listing = FolderListing(self.root, self._is_file, self._is_dir, self._parquet_parts)
        return locate_in(listing, table)

    # --- through Hadoop's FileSystem ---------------------------------------------------------

    def _fs(self) -> Any:
        return self._hpath(self.root).getFileSystem(hadoop_conf(self.session))

    def _hpath(self, path: Path) -> Any:
        return hadoop_path(self.session, self.uri(path))

    def _is_file(self, path: Path) -> bool:
        found = self._entries.get(path.name) if path.parent == self.root else None
        return found is not None and found[0]

    def _is_dir(self, path: Path) -> bool:
        found = self._entries.get(path.name) if path.parent == self.root else None
        return found is not None and not found[0]

    def _parquet_parts(self, folder: Path) -> tuple[Path, ...]:
        files = self._fs().listFiles(self._hpath(folder), True)
        parts = []
        while files.hasNext():
            path = Path(str(files.next().getPath().toUri().getPath()))
            if path.name.endswith(".parquet"):
                parts.append(path)
        return tuple(sorted(parts))

    def size(self, path: Path) -> int:
        """Bytes in the file ``path``."""
        if self.local:
            return path.stat().st_size
        return int(self._fs().getFileStatus(self._hpath(path)).getLen())

    def read_bytes(self, path: Path, *, start: int, length: int) -> bytes:
        """``length`` bytes of ``path`` from ``start`` (fewer at its end)."""
        if self.local:
            with path.open("rb") as fh:
                fh.seek(start)
                return fh.read(length)
        stream = self._fs().open(self._hpath(path))
        try:
            stream.seek(start)
            return bytes(stream.readNBytes(length))
        finally:
            stream.close()


def spark_folder(folder: str | Path, session: SparkSession) -> SparkFolder | None:
    """The folder ``folder`` names, or None if it is not a folder."""
    if not is_uri(folder):
        path = Path(folder)
        return SparkFolder(str(folder), path, session) if path.is_dir() else None
    given = str(folder)
    hpath = hadoop_path(session, given)
    fs = hpath.getFileSystem(hadoop_conf(session))
    if not fs.exists(hpath) or not fs.getFileStatus(hpath).isDirectory():
        return None
    uri = fs.makeQualified(hpath).toUri()
    prefix = f"{uri.getScheme()}://{uri.getAuthority() or ''}"
    entries = {str(s.getPath().getName()): (bool(s.isFile()), int(s.getLen())) for s in fs.listStatus(hpath)}
    return SparkFolder(given, Path(str(uri.getPath())), session, prefix, entries)


def hadoop_path(session: SparkSession, uri: str) -> Any:
    """``org.apache.hadoop.fs.Path(uri)`` in the session's JVM."""
    jvm = session._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM (a Spark Connect session cannot list files)")
    return jvm.org.apache.hadoop.fs.Path(uri)


def hadoop_conf(session: SparkSession) -> Any:
    """The session's Hadoop configuration (the store connectors and credentials)."""
    return session._jsc.hadoopConfiguration()


# --- opening a table ---------------------------------------------------------------------------


Opened = tuple[OpenedTable | None, "DataFrame | None", list[Finding]]


def open_raw(place: SparkFolder, source: Source) -> Opened:
    """Check the files of ``source`` and read them as the raw table: its columns, ``_file`` and ``_row``."""
    if source.kind == "csv":
        return _open_csv(place, source)
    return _open_parquet(place, source)


def _open_csv(place: SparkFolder, source: Source) -> Opened:
    findings: list[Finding] = []
    if place.local:
        header, problems = check_csv(duckdb_connect(), source)
    else:
        header, problems = _check_remote_csv(place, source)
    if header is None:
        return None, None, problems
    frame = _read_csv(place, source, header=header)
    if not place.local:
        findings += _malformed_rows(source, frame, columns=len(header))
        frame = frame.drop(_CORRUPT)
    opened = OpenedTable(source, tuple(header), dict.fromkeys(header, "VARCHAR"))
    return (None, None, findings) if findings else (opened, frame, [])


def _check_remote_csv(place: SparkFolder, source: Source) -> tuple[list[str] | None, list[Finding]]:
    path = source.paths[0]
    size = place.size(path)
    if size == 0:
        return None, [empty_csv_finding(source)]
    head = place.read_bytes(path, start=0, length=_HEAD_BYTES)
    bad = first_invalid_utf8([head], complete=len(head) >= size)
    if bad is not None:
        return None, [not_utf8_finding(source, bad)]
    return check_header(source, first_line_of(head))


def _read_csv(place: SparkFolder, source: Source, *, header: list[str]) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    fields = [StructField(c, StringType()) for c in header]
    if not place.local:
        fields.append(StructField(_CORRUPT, StringType()))
    frame = (
        place.session.read.schema(StructType(fields))
        .option("header", True)
        .option("sep", ",")
        .option("quote", '"')
        .option("escape", '"')
        .option("multiLine", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .option("encoding", "UTF-8")
        .csv(place.uri(source.paths[0]))
    )
    return _numbered(frame).withColumn("_file", F.lit(source.display()))


def _numbered(frame: DataFrame) -> DataFrame:
    """``frame`` with ``_row``: 1, 2, ... in the order its partitions hold the rows (file order).

    ``monotonically_increasing_id`` counts rows within a partition and jumps between partitions, so
    each partition's id is shifted down by the rows of the partitions before it.
    """
    from pyspark.sql import functions as F

    with_id = frame.withColumn("_id", F.monotonically_increasing_id())
    if frame.rdd.getNumPartitions() <= 1:  # a multi-line CSV file is never split: one partition
        return with_id.withColumn("_row", F.col("_id") + 1).drop("_id")
    part = F.shiftright(F.col("_id"), _PARTITION_BITS)
    sizes = sorted((int(r[0]), int(r[1])) for r in with_id.groupBy(part).count().collect())
    offsets, before = [], 0
    for index, rows in sizes:
        offsets.append((index, before))
        before += rows
    table = with_id.sparkSession.createDataFrame(offsets, "_part long, _before long")
    low = F.col("_id").bitwiseAND((1 << _PARTITION_BITS) - 1)
    joined = with_id.join(F.broadcast(table), part == F.col("_part"))
    return joined.withColumn("_row", low + F.col("_before") + 1).drop("_id", "_part", "_before")


def _malformed_rows(source: Source, frame: DataFrame, *, columns: int) -> list[Finding]:
    """Rows Spark's CSV parser found with more or fewer fields than the header (a URI's files only)."""
    from pyspark.sql import functions as F

    # Spark refuses a query reading only the corrupt-record column from the file: read every column.
    bad = frame.where(F.col(_CORRUPT).isNotNull()).select("_row", *frame.columns).orderBy("_row")
    rows = [int(r[0]) for r in bad.limit(_MAX_MALFORMED_EXAMPLES).collect()]
    if not rows:
        return []
    count = bad.count() if len(rows) == _MAX_MALFORMED_EXAMPLES else len(rows)
    msg = (
        f"malformed CSV rows (wrong number of fields); every row needs {columns} fields like the "
        "header. Further checks of this table wait until these rows are fixed"
    )
    examples = tuple(Example(source.display(), row) for row in rows)
    return [Finding(source.table, "malformed_row", msg, count=count, examples=examples)]


def _open_parquet(place: SparkFolder, source: Source) -> Opened:
    from pyspark.sql import functions as F

    schemas, findings = check_parquet(
        source, problem_of=lambda p: _parquet_problem(place, p), read_schema=lambda p: _schema(place, p)
    )
    if schemas is None:
        return None, None, findings
    uris = [place.uri(p) for p in source.paths]
    schema = place.session.read.parquet(*uris).schema
    row = (F.col("_metadata.row_index") + 1).alias("_row")  # the row within its own file
    parts = [
        place.session.read.schema(schema)
        .parquet(uri)
        .select("*", row, F.lit(source.display(path)).alias("_file"))
        for uri, path in zip(uris, source.paths, strict=True)
    ]
    frame = reduce(lambda a, b: a.unionByName(b), parts)
    return OpenedTable(source, tuple(schemas[0].names), duckdb_types(schemas[0])), frame, []


def _file(source: Source, path: Path) -> Any:
    from pyspark.sql import functions as F

    return F.lit(source.display(path)).alias("_file")


def _parquet_problem(place: SparkFolder, path: Path) -> str | None:
    size = place.size(path)
    if size < 12:
        return parquet_problem(size, head=b"", tail=b"")
    head = place.read_bytes(path, start=0, length=4)
    return parquet_problem(size, head=head, tail=place.read_bytes(path, start=size - 4, length=4))


def _schema(place: SparkFolder, path: Path) -> pa.Schema:
    if place.local:
        return pq.read_schema(path)
    with _HadoopFile(place, path) as fh:
        return pq.read_schema(fh)


def duckdb_types(schema: pa.Schema) -> dict[str, str]:
    """The DuckDB type name of each column of a Parquet schema, as ``DESCRIBE`` names it on DuckDB.

    Validation's typed views are written against DuckDB's types (``BIGINT``, ``DOUBLE``, ``VARCHAR``,
    ``DATE``, ``DECIMAL(p,s)``...); the SQL then runs on the values Spark read.
    """
    plain = pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
    )
    relation = duckdb_connect().from_arrow(plain.empty_table())
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}


class _HadoopFile(io.RawIOBase):
    """A file read through Hadoop's FileSystem, for pyarrow to read a Parquet footer from."""

    def __init__(self, place: SparkFolder, path: Path) -> None:
        super().__init__()
        self._place, self._path = place, path
        self._size = place.size(path)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._pos)
        if wanted <= 0:
            return 0
        data = self._place.read_bytes(self._path, start=self._pos, length=wanted)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)
