"""The characters no identifier holds, written once for every place that refuses them.

Control characters (a tab, a line break, NUL), and the invisible characters that change how text is
shown or make two ids that read alike different: the direction marks (U+200E, U+200F, U+061C, which
Excel and Windows put into right-to-left text), the embeddings, overrides and isolates (U+202A to
U+202E, U+2066 to U+2069: an override turns the letters after it around, so one id reads as another)
and the byte-order mark (U+FEFF). Letters of any script, and the joiners some need (U+200C, U+200D),
are ids as any others.

The service refuses them in every id it is given (``service.schemas.PLAIN_ID``), the data's contract
in every id column (``validation.UNSEEN_IN_IDS``, on DuckDB and Spark), the mapping import before an
id is pseudonymised, and the staff relationships import.
"""

from __future__ import annotations

import re

#: The ranges of code points no identifier holds, first and last included.
UNSEEN_RANGES: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x061C, 0x061C),
    (0x200E, 0x200F),
    (0x202A, 0x202E),
    (0x2066, 0x2069),
    (0xFEFF, 0xFEFF),
)

#: The ranges as the inside of a regular expression's character class, in Python's syntax.
UNSEEN_CLASS = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in UNSEEN_RANGES)
#: The same in RE2's and Java's syntax (DuckDB; Spark, through sqlglot's translation).
UNSEEN_CLASS_RE2 = "".join(f"\\x{{{a:02x}}}-\\x{{{b:02x}}}" for a, b in UNSEEN_RANGES)
#: The invisible ones by code point, as messages name them ("U+061C, U+200E to U+200F, ...").
UNSEEN_NAMED = ", ".join(
    f"U+{a:04X}" if a == b else f"U+{a:04X} to U+{b:04X}" for a, b in UNSEEN_RANGES if a > 0x9F
)
#: Finds any of them in a text.
UNSEEN = re.compile(f"[{UNSEEN_CLASS}]")


#: What a refusal says of one ({found}: the character, as ``unseen_in`` gives it).
UNSEEN_SAID = (
    "an id holds {found}, a control character or an invisible direction character, which no sign-in "
    "carries: remove it from the file"
)


def unseen_in(text: str) -> str | None:
    """The first character no identifier holds in ``text``, as U+XXXX (None: none)."""
    found = UNSEEN.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"
