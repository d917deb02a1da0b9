"""Words Waymark never shows a user (PRODUCT §2): the labels it exists not to put on a student.

Waymark's own words are held to them by the tests (``tests/vocabulary.py`` adds the colour words of
traffic lights). Text an institution writes that reaches staff and students as it is (a source's
label, read in sentences; its transparency wording) is refused when it holds one: an Indonesian
university's attendance source labelled "... a dropout risk" reached students' own indicators.

An institution adds its own language's words in a file (``WAYMARK_LABELLING_WORDS_FILE``, a TOML list
``words``): added to these, never in their place.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

from waymark.models.settings import Settings

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
    # Arabic, matched with the article, a joined preposition or conjunction and the plural and feminine
    # endings Arabic writes on the word (``_alternative``): a Jordanian university's label "الطلبة
    # المتعثرين" (the struggling students) had passed beside a refused bare متعثر
    # (phrases with a word for students: "المشاريع المتعثرة" are troubled projects, "خطر تسرب البيانات"
    # a data leak, and "خطر الانسحاب من الأسواق" a market's)
    "طالب متعثر",
    "طلبة متعثر",
    "طلاب متعثر",
    "طالب متسرب",
    "طلبة متسرب",
    "طلاب متسرب",
    "معرض للخطر",
    "طلبة في خطر",
    "طلاب في خطر",
    "خطر الرسوب",
    "طلبة ضعاف",
    "طلاب ضعاف",
    "طالب ضعيف",
    "إنذار أكاديمي",
    # Welsh (a Welsh university's source label "myfyrwyr mewn perygl" reached students' sentences)
    "mewn perygl",
    "yn methu",
    "risg uchel",
    "risg isel",
    "risg canolig",
    "perygl o adael",
)
# RE2's \b knows ASCII letters only, so a word starting or ending with another letter (à, é, a
# Cyrillic or Arabic one) is bounded by "not a letter or digit" instead.
_BEFORE, _AFTER = "(^|[^\\pL\\pN_])", "($|[^\\pL\\pN_])"


class LabellingWordsError(ValueError):
    """The institution's labelling words file cannot be used; the message names the file and why."""


@lru_cache(maxsize=4)
def load_words(path: Path | None = None) -> tuple[str, ...]:
    """The packaged words and those of ``path`` (an institution's own, added; none when None).

    Raises
    ------
    LabellingWordsError
        If the file cannot be read, is not TOML, or has no non-empty list ``words`` of text.
    """
    if path is None:
        return LABELLING_WORDS
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabellingWordsError(f"labelling words {path}: {exc}") from exc
    words = raw.get("words")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise LabellingWordsError(f"labelling words {path}: expected a non-empty list `words` of text")
    return tuple(dict.fromkeys([*LABELLING_WORDS, *(" ".join(w.split()) for w in words)]))


def configured_words() -> tuple[str, ...]:
    """The words this deployment refuses: the packaged ones and ``WAYMARK_LABELLING_WORDS_FILE``'s.

    The environment is read afresh, as for the sensitive terms: validation runs before a command's
    own settings are read.
    """
    return load_words(Settings().labelling_words_file)  # type: ignore[call-arg]


#: What Arabic joins to a word: a conjunction or preposition (و ف ب ك ل), then the article (ال, or لل
#: after ل); and after it, the feminine and plural endings and a pronoun.
_ARABIC_BEFORE = "(?:[\u0648\u0641\u0628\u0643\u0644]?(?:\u0627\u0644|\u0644\u0644)?)"
_ARABIC_AFTER = (
    "(?:\u0629|\u0648\u0646|\u064a\u0646|\u0627\u062a|\u0627\u0646|\u0647|\u0647\u0627|\u0647\u0645)?"
)
_ARABIC = re.compile("[\u0600-\u06ff]")
# How Arabic is typed otherwise: vowel marks and the tatweel left out; hamza's alif, taa marbuta and
# alif maqsura written plain (انذار for إنذار, طلبه for طلبة). Both sides are written so before matching.
_ARABIC_MARKS = "[\u064b-\u0652\u0640]"
_ARABIC_FROM, _ARABIC_TO = "\u0623\u0625\u0622\u0629\u0649", "\u0627\u0627\u0627\u0647\u064a"
_ARABIC_PLAIN = str.maketrans(_ARABIC_FROM, _ARABIC_TO)


def arabic_plain(text: str) -> str:
    """``text`` with Arabic written plain (``_ARABIC_MARKS`` dropped, letters as ``_ARABIC_PLAIN``)."""
    return re.sub(_ARABIC_MARKS, "", text).translate(_ARABIC_PLAIN) if _ARABIC.search(text) else text


def _alternative(word: str) -> str:
    """A regular expression for ``word``, an Arabic one with what Arabic joins to it (Python's and RE2's).

    Words of several parts match across any run of spaces (an institution's "myfyrwyr  gwan").
    """
    if not _ARABIC.search(word):
        return "\\s+".join(re.escape(part) for part in word.split())
    plain = arabic_plain(word)
    return "\\s+".join(f"{_ARABIC_BEFORE}{re.escape(part)}{_ARABIC_AFTER}" for part in plain.split())


@lru_cache(maxsize=4)
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(_alternative(w) for w in words)
    return re.compile(r"(?<![\w])(" + alternatives + r")(?![\w])", re.IGNORECASE)


def labelling_words(text: str, words: tuple[str, ...] | None = None) -> list[str]:
    """Every labelling word or phrase in ``text``, as written (``words``: the configured ones)."""
    return [m.group(0) for m in _pattern(words or configured_words()).finditer(arabic_plain(text))]


def labelling_sql(column: str, words: tuple[str, ...] | None = None) -> str:
    """SQL: whether ``column`` (text) holds a labelling word (DuckDB's regular expressions)."""
    alternatives = "|".join(_alternative(w).replace("'", "''") for w in words or configured_words())
    text = f"CAST({column} AS VARCHAR)"
    plain = f"translate(regexp_replace({text}, '{_ARABIC_MARKS}', '', 'g'), '{_ARABIC_FROM}', '{_ARABIC_TO}')"
    return f"regexp_matches({plain}, '(?i){_BEFORE}({alternatives}){_AFTER}')"
