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


def close_words(a: str, b: str) -> bool:
    """Whether a typed text is a short text (a button's title) with at most a typo or two: once
    folded and without spaces, an edit distance of 1 up to 8 letters, 2 beyond ("atencion al
    clinte" is "Atención al cliente"; "si" is not "no")."""
    x, y = fold(a).replace(" ", ""), fold(b).replace(" ", "")
    if x == y:
        return True
    longest = max(len(x), len(y))
    if longest < 4:
        return False
    allowed = 1 if longest <= 8 else 2
    if abs(len(x) - len(y)) > allowed:
        return False
    previous = list(range(len(y) + 1))
    for i, cx in enumerate(x, 1):
        current = [i]
        for j, cy in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cx != cy)))
        if min(current) > allowed:
            return False
        previous = current
    return previous[-1] <= allowed
