"""Words Waymark never shows a user (PRODUCT §2): the labels it exists not to put on a student.

Waymark's own words are held to them by the tests (``tests/vocabulary.py`` adds the colour words of
traffic lights). Text an institution writes that reaches staff and students as it is (a source's
label, read in sentences; its transparency wording) is refused when it holds one: an Indonesian
university's attendance source labelled "... a dropout risk" reached students' own indicators.
"""

from __future__ import annotations

import re

LABELLING_WORDS = (
    "at risk",
    "at-risk",
    "high risk",
    "medium risk",
    "low risk",
    "risk level",
    "risk band",
    "traffic light",
    "failing",
    "will fail",
    "likely to fail",
    "dropout",
    "drop out",
    "weak student",
    "struggling student",
    "poor student",
    # in the languages of institutions Waymark has been tried with: an Argentine university's source
    # labelled "alumnos en riesgo de abandono" reached staff's and students' sentences
    # (phrases about students, not "en riesgo" alone: "poner en riesgo sus datos" is privacy wording)
    "alumnos en riesgo",
    "estudiantes en riesgo",
    "en riesgo de abandono",
    "en riesgo de deserción",
    "riesgo de abandono",
    "riesgo de deserción",
    "alto riesgo",
    "riesgo alto",
    "riesgo medio",
    "riesgo bajo",
    "semáforo",
    "desertor",
    "desertores",
    "alunos em risco",
    "em risco de evasão",
    "élèves à risque",
    "étudiants à risque",
    "en risque de décrochage",
    "décrocheur",
    "décrocheurs",
    "feu tricolore",
    "abbruchgefährdet",
    "studienabbrecher",
    "risikogruppe",
    "studenti a rischio",
    "a rischio di abbandono",
    "группа риска",
    "зона риска",
    "зоне риска",
    "отстающий",
    "отстающие",
    "متعثر",
    "متعثرين",
    "معرض للخطر",
    # Welsh (a Welsh university's source label "myfyrwyr mewn perygl" reached students' sentences)
    "mewn perygl",
    "yn methu",
    "risg uchel",
    "risg isel",
    "risg canolig",
    "perygl o adael",
)
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w in LABELLING_WORDS) + r")\b", re.IGNORECASE)
# RE2's \b knows ASCII letters only, so a word starting or ending with another letter (à, é, a
# Cyrillic or Arabic one) is bounded by "not a letter or digit" instead.
_BEFORE, _AFTER = "(^|[^\\pL\\pN_])", "($|[^\\pL\\pN_])"


def labelling_words(text: str) -> list[str]:
    """Every labelling word or phrase in ``text``, as written."""
    return [m.group(0) for m in _PATTERN.finditer(text)]


def labelling_sql(column: str) -> str:
    """SQL: whether ``column`` (text) holds a labelling word (DuckDB's regular expressions)."""
    words = "|".join(re.escape(w).replace("'", "''") for w in LABELLING_WORDS)
    return f"regexp_matches(CAST({column} AS VARCHAR), '(?i){_BEFORE}({words}){_AFTER}')"
