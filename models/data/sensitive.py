"""Activity categories that name a special category of data are refused (CoP §4).

A source or activity_type is a *kind* of activity (resource, forum, loan), never its topic. A category
named after health, belief, sexuality, ethnicity, trade unions or politics would let a feature, and so
an indicator, rest on an inference about a special category of personal data: that a student read
``reading_mental_health_and_you`` or booked ``counselling``. Validation refuses such names; renaming
the category to a neutral kind changes no feature, because features group vle activity types by kind
(``models.features.catalogue.VLE_TYPES``) and every other type counts as study content.

The terms come from ``sensitive_terms.toml`` beside this module, or the file named by
``WAYMARK_SENSITIVE_TERMS_FILE``; that file says how a name is matched.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb

from waymark.models.data.findings import Example, Finding
from waymark.models.data.sqltext import ident
from waymark.models.folding import bare
from waymark.models.settings import Settings

PACKAGED_TERMS = Path(__file__).resolve().parent / "sensitive_terms.toml"
CHECKED_COLUMNS = ("source", "activity_type")
_WORD_BREAK = re.compile(r"[_\-\s]+|(?<=[a-z0-9])(?=[A-Z])")


class SensitiveTermsError(ValueError):
    """The terms file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Term:
    """One term: words that must appear together, in order; a word ending in * is a prefix."""

    text: str
    words: tuple[str, ...]
    # "special": a special category (CoP §4); "circumstance": a student's money, a socio-economic proxy
    kind: str = "special"

    def found_in(self, words: tuple[str, ...]) -> bool:
        """True when the term's words occur consecutively among ``words``."""
        n = len(self.words)
        return any(
            all(
                _word_matches(mine, theirs) for mine, theirs in zip(self.words, words[i : i + n], strict=True)
            )
            for i in range(len(words) - n + 1)
        )


def _word_matches(pattern: str, word: str) -> bool:
    return word.startswith(pattern[:-1]) if pattern.endswith("*") else word == pattern


def words_of(name: str) -> tuple[str, ...]:
    """The lower-case words of a category name: split on _, -, spaces and lower-to-upper case changes.

    Accents are dropped (Saúde as saude, Église as eglise), in names and in terms alike.
    """
    return tuple(w.lower() for w in _WORD_BREAK.split(bare(name).strip()) if w)


def parse_terms(texts: list[str], *, kind: str = "special") -> tuple[Term, ...]:
    """Terms from their written form ("mental health", "counsel*")."""
    return tuple(Term(t, words_of(t), kind) for t in texts if words_of(t))


@lru_cache(maxsize=4)
def load_terms(path: Path | None = None) -> tuple[Term, ...]:
    """The terms in ``path`` (the packaged list when None).

    Raises
    ------
    SensitiveTermsError
        If the file cannot be read, is not TOML, or has no ``terms`` list of text.
    """
    where = path or PACKAGED_TERMS
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SensitiveTermsError(f"sensitive terms {where}: {exc}") from exc
    texts = raw.get("terms")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise SensitiveTermsError(f"sensitive terms {where}: expected a non-empty list `terms` of text")
    money = raw.get("circumstances", [])
    if not isinstance(money, list) or not all(isinstance(t, str) for t in money):
        raise SensitiveTermsError(f"sensitive terms {where}: `circumstances` must be a list of text")
    return parse_terms(texts) + parse_terms(money, kind="circumstance")


def configured_terms() -> tuple[Term, ...]:
    """The terms this deployment checks: ``WAYMARK_SENSITIVE_TERMS_FILE``, else the packaged list.

    The environment is read afresh, not through the cached ``get_settings``: validation runs in
    commands before their own settings are read, and must not fix them early.
    """
    return load_terms(Settings().sensitive_terms_file)  # type: ignore[call-arg]


def sensitive_term(name: str, terms: tuple[Term, ...]) -> Term | None:
    """The first term ``name`` contains, or None."""
    words = words_of(name)
    return next((t for t in terms if t.found_in(words)), None)


def sensitive_category_findings(con: duckdb.DuckDBPyConnection, terms: tuple[Term, ...]) -> list[Finding]:
    """One error per activity source or activity_type whose name contains a sensitive term.

    Parameters
    ----------
    con
        A connection holding the typed view ``t_activity`` (see ``validation.validate_folder``).
    terms
        The terms to look for.

    Returns
    -------
    list of Finding
        Each names the column, the value, the term, how many rows carry it and the first of them.
    """
    out = []
    for column in CHECKED_COLUMNS:
        out += category_findings(column, con.execute(category_sql(column)).fetchall(), terms=terms)
    labelled = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 't_sources' AND column_name = 'label'"
    ).fetchall()
    if labelled and int(labelled[0][0]):
        out += category_findings("label", con.execute(LABEL_SQL).fetchall(), terms=terms)
    return out


# A source's label is read as it is in sentences, the coverage and the transparency statement, and it
# names what the source records: "the Accommodated Testing Centre" beside a neutral source `tc` and
# activity type `sitting` made every count of it a disability flag (a polytechnic's review).
LABEL_SQL = (
    "SELECT label, count(*), arg_min(_file, (_file, _row)), arg_min(_row, (_file, _row)) "
    "FROM t_sources WHERE label IS NOT NULL AND trim(label) <> '' GROUP BY label ORDER BY label"
)


def category_sql(column: str) -> str:
    """Each value of ``column`` in ``t_activity``: value, rows, and the file and row of its first row."""
    c = ident(column)
    return (
        f"SELECT {c}, count(*), arg_min(_file, (_file, _row)), arg_min(_row, (_file, _row)) "
        f"FROM t_activity WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY {c}"
    )


def category_findings(
    column: str, rows: list[tuple[object, ...]], *, terms: tuple[Term, ...]
) -> list[Finding]:
    """The findings of ``category_sql(column)``'s rows: one per value that contains a term."""
    out = []
    for value, count, file, row in rows:
        term = sensitive_term(str(value), terms)
        if term is not None:
            first = (str(file), int(str(row)))
            out.append(_finding(column, str(value), term=term, count=int(str(count)), first=first))
    return out


def _finding(column: str, value: str, *, term: Term, count: int, first: tuple[str, int]) -> Finding:
    if column == "label":
        return _label_finding(value, term=term, first=first)
    kind = "source" if column == "source" else "activity type"
    if term.kind == "circumstance":
        message = (
            f"the {kind} {value!r} names a student's financial circumstances (it contains {term.text!r}): "
            "a proxy of socio-economic background, which only the fairness audit reads, in aggregate, and "
            "never a feature (its counts would tell who is in arrears or in hardship). Leave its rows "
            "out; the terms checked are the packaged list or the file WAYMARK_SENSITIVE_TERMS_FILE names"
        )
        example = Example(file=first[0], row=first[1], value=value)
        return Finding(
            "activity", "sensitive_category", message, column=column, count=count, examples=(example,)
        )
    message = (
        f"the {kind} {value!r} names a special category of personal data (it contains {term.text!r}), "
        "so activity in it could reveal a student's health, beliefs, sexuality, ethnicity, union "
        "membership or politics (CoP §4). Rename it to a neutral kind of activity (resource, page, "
        "booking, ...) in the export or the mapping (values = { ... }), or leave its rows out; the "
        "terms checked are the packaged list or the file WAYMARK_SENSITIVE_TERMS_FILE names"
    )
    example = Example(file=first[0], row=first[1], value=value)
    return Finding("activity", "sensitive_category", message, column=column, count=count, examples=(example,))


def _label_finding(value: str, *, term: Term, first: tuple[str, int]) -> Finding:
    if term.kind == "circumstance":
        message = (
            f"the source label {value!r} names a student's financial circumstances (it contains "
            f"{term.text!r}): a count of visits to it tells who is in arrears or in hardship, a proxy of "
            "socio-economic background only the fairness audit reads. Leave the source's rows out of the "
            "activity; the terms checked are the packaged list or the file WAYMARK_SENSITIVE_TERMS_FILE names"
        )
        example = Example(file=first[0], row=first[1], value=value)
        return Finding("sources", "sensitive_category", message, column="label", count=1, examples=(example,))
    message = (
        f"the source label {value!r} names a special category of personal data (it contains "
        f"{term.text!r}): a count of visits to such a service tells who uses it, so its activity could "
        "reveal a student's health, disability, beliefs, sexuality, ethnicity, union membership or "
        "politics (CoP §4). Leave the source's rows out of the activity (renaming the label would hide "
        "what its counts reveal, not remove it); if the source records something neutral, label it by "
        "what it records, not how (attendance taken by a fingerprint reader is attendance). The terms "
        "checked are the packaged list or the file WAYMARK_SENSITIVE_TERMS_FILE names"
    )
    example = Example(file=first[0], row=first[1], value=value)
    return Finding("sources", "sensitive_category", message, column="label", count=1, examples=(example,))
