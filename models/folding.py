"""Text as two systems' spellings of the same thing compare: without case or accents.

One system writes "Şahin", "FİZ101" or "İbrahim" where another writes "SAHIN", "fiz101" or "Ibrahim".
Decomposed (NFKD), stripped of combining marks and case-folded, with the dotless i (U+0131) read as i,
each pair meets. Letters Unicode does not decompose are written as their base letters first: a Polish
"Łukasz" or "niepełnosprawny", a Danish "Søren", a Vietnamese "Đặng" and an Icelandic "Þór" meet
"Lukasz", "niepelnosprawny", "Soren", "Dang" and "Thor" only so. Python's ``"İ".lower()`` is "i" with
a combining dot, and SQLite's ``lower()`` folds ASCII only, so neither is used. For comparing and
hinting only: values written out keep their spelling.
"""

from __future__ import annotations

import unicodedata

DOTLESS_I = "\u0131"

#: Digits of other scripts an id, a number or a date may be written in, read as 0 to 9: Arabic-Indic (an
#: Arabic records system's \u0661\u0664/\u0660\u0669/\u0662\u0660\u0662\u0665), Eastern Arabic-Indic
#: (Persian, Urdu), Devanagari (Hindi, Nepali, Marathi), Bengali, Thai, Myanmar, Khmer and full-width
#: (Japanese, Chinese).
_ZEROS = (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1040, 0x17E0, 0xFF10)
OTHER_DIGITS = "".join(chr(start + i) for start in _ZEROS for i in range(10))
ASCII_DIGITS = "0123456789" * len(_ZEROS)
_DIGITS = str.maketrans(OTHER_DIGITS, ASCII_DIGITS)

# Letters with a stroke or ligatures, which NFKD leaves whole, as people write them without the letter.
_UNDECOMPOSED = str.maketrans(
    {
        "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
        "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
        # Arabic letters written either way (an Egyptian university's فاطمه found none of 14 فاطمة, and
        # مصطفى and مصطفي each found a different ten): teh marbuta as heh, alef maksura as yeh, tatweel
        # dropped; the Persian and Urdu yeh and keheh, as Arabic keyboards type them (hamza forms
        # decompose on their own)
        "\u0629": "\u0647", "\u0649": "\u064a", "\u0640": "", "\u06cc": "\u064a", "\u06a9": "\u0643",
    }
)  # fmt: skip


def bare(text: str) -> str:
    """``text`` decomposed (NFKD) without its combining marks: Saúde as Saude, Łódź as Lodz."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def folded(text: str) -> str:
    """``text`` without case or accents, dotted and dotless i alike."""
    return bare(text).casefold().replace(DOTLESS_I, "i")


def ascii_digits(text: str) -> str:
    """``text`` with the digits of other scripts (``OTHER_DIGITS``) written as 0 to 9."""
    return text.translate(_DIGITS)
