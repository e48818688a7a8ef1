"""Text folding shared by the engine (quick reply titles, choices) and the intent matcher."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = re.compile(r"['\u2019\u00b4`]")
_NOT_WORD = re.compile(r"[\W_]+")


def strip_accents(text: str) -> str:
    """ "ação" -> "acao"; "ß" is left to casefold()."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """The words of text, case-folded, accents kept: "¿Qué HORA es?" -> ["qué", "hora", "es"].

    Apostrophes join (so "don't" and "dont" are the same word); other punctuation separates.
    """
    return _NOT_WORD.sub(" ", _APOSTROPHES.sub("", text.casefold())).split()


def fold(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: "¿Qué HORA es?" -> "que hora es"."""
    return strip_accents(" ".join(words(text)))


def same_words(a: str, b: str) -> bool:
    """Whether two short texts (a button title, a choice) are the same once folded, spaces
    ignored too: "E-mail me!" is "Email me"."""
    return fold(a).replace(" ", "") == fold(b).replace(" ", "")
