"""xAPI statements from a Learning Record Store, one JSON statement a line (``xapi``).

An LRS returns statements from ``GET /xAPI/statements`` (xAPI 1.0.3, part three, 2.1); most LRSs can
also export them as JSON lines. Each statement becomes one row of text columns:

=================  ==============================================================================
``statement_id``   ``id``
``actor``          ``actor.account.name``, else the address in ``actor.mbox`` (``mailto:`` removed),
                   else ``actor.mbox_sha1sum``, else ``actor.openid``
``actor_home_page`` ``actor.account.homePage``
``verb_id``        ``verb.id`` (an IRI); ``verb``: its last path segment (``completed``)
``object_id``      ``object.id``
``object_type_id`` ``object.definition.type`` (an IRI); ``object_type``: its last path segment
``course_id``      the course the statement belongs to: the ``context.contextActivities`` grouping
                   (else parent) activity whose type is ``http://adlnet.gov/expapi/activities/course``,
                   else the first parent, else the first grouping activity
``timestamp``      ``timestamp`` (ISO 8601, as the statement gives it); ``stored`` likewise
``result_score_scaled``, ``result_success``, ``result_completion``: from ``result``
=================  ==============================================================================

Voided statements are left out, with the statements that void them (xAPI part two, 2.3.2): a
statement the LRS was told was a mistake is no evidence of anything.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from waymark.models.data.sqltext import literal
from waymark.training.ingest.mapping.formats.export_errors import ExportFormatError
from waymark.training.ingest.mapping.readers import register
from waymark.training.ingest.mapping.schema import InputSpec

VOIDED = "http://adlnet.gov/expapi/verbs/voided"
COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"


def _context_list(kind: str) -> str:
    # the spec lets a statement give one object where a list is meant; an LRS returns lists
    path = f"$.context.contextActivities.{kind}"
    return (
        f"CASE json_type(s, '{path}') WHEN 'ARRAY' THEN CAST(json_extract(s, '{path}[*]') AS JSON[]) "
        f"WHEN 'OBJECT' THEN [json_extract(s, '{path}')] ELSE []::JSON[] END"
    )


def _course() -> str:
    courses = (
        f"list_filter(list_concat({_context_list('grouping')}, {_context_list('parent')}), "
        f"lambda a: a->>'$.definition.type' = '{COURSE_TYPE}')"
    )
    return (
        f"coalesce(({courses})[1]->>'$.id', ({_context_list('parent')})[1]->>'$.id', "
        f"({_context_list('grouping')})[1]->>'$.id')"
    )


_LAST_SEGMENT = r"'([^/#]+)/?$'"

_COLUMNS = f"""
    s->>'$.id' AS statement_id,
    coalesce(s->>'$.actor.account.name', regexp_replace(s->>'$.actor.mbox', '^mailto:', ''),
             s->>'$.actor.mbox_sha1sum', s->>'$.actor.openid') AS actor,
    s->>'$.actor.account.homePage' AS actor_home_page,
    s->>'$.verb.id' AS verb_id,
    regexp_extract(s->>'$.verb.id', {_LAST_SEGMENT}, 1) AS verb,
    s->>'$.object.id' AS object_id,
    s->>'$.object.definition.type' AS object_type_id,
    regexp_extract(s->>'$.object.definition.type', {_LAST_SEGMENT}, 1) AS object_type,
    {_course()} AS course_id,
    s->>'$.timestamp' AS timestamp,
    s->>'$.stored' AS stored,
    s->>'$.result.score.scaled' AS result_score_scaled,
    s->>'$.result.success' AS result_success,
    s->>'$.result.completion' AS result_completion
"""


@register("xapi")
def read_xapi(con: duckdb.DuckDBPyConnection, path: Path, *, spec: InputSpec) -> duckdb.DuckDBPyRelation:
    """Statements as JSON lines, flattened to the columns above; voided and voiding statements left out."""
    del spec
    statements = f"SELECT json AS s FROM read_json_objects({literal(path)}, format = 'newline_delimited')"
    try:
        ((bad,),) = con.sql(
            f"SELECT count(*) FROM ({statements}) WHERE json_type(s) <> 'OBJECT' OR s->>'$.verb.id' IS NULL"
        ).fetchall()
    except duckdb.Error as error:
        raise ExportFormatError(path, f"not JSON lines: {error}") from error
    if bad:
        raise ExportFormatError(path, f"{bad} line(s) are not xAPI statements (a JSON object with a verb)")
    return con.sql(
        f"""WITH statements AS ({statements}),
        voided AS (SELECT s->>'$.object.id' AS id FROM statements WHERE s->>'$.verb.id' = '{VOIDED}')
        SELECT {_COLUMNS} FROM statements
        WHERE s->>'$.verb.id' <> '{VOIDED}' AND coalesce(s->>'$.id', '') NOT IN (SELECT id FROM voided)"""
    )
