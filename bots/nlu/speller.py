"""Visitors' typing mended before the sentence encoder reads it: missing accents put back and
one-letter typos corrected, against the words of the bot's own training phrases.

The encoder reads "conexão" as one known word and "conexao" as four pieces ("con", "ex", "a",
"o") that mean little; "factrua" and "pagr" likewise. The character n-grams forgive such typos
only when the rest of the text is a training phrase too. So, before embedding a visitor's text:

- a word without accents whose folded form is a word of the training phrases is written as the
  phrases write it ("conexao" -> "conexão", "numero" -> "número");
- a word the encoder does not know as a whole (more than one piece of its vocabulary), of four
  letters or more, that is one edit (a letter missing, extra, wrong, or two swapped) from a
  word of the training phrases becomes that word ("factrua" -> "factura"); when several are,
  the most frequent one in the phrases.

Words the encoder knows are left alone: "cost" is not "cast", whatever the bot's phrases say.
The lookup is SymSpell's (every word's one-letter deletions indexed), so mending a text costs
microseconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from bots.engine.text import strip_accents, words

MIN_LENGTH = 4  # shorter words are too alike to correct ("sim", "som", "sem")


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


class Speller:
    """The written forms of the words of a bot's phrases, and their one-letter neighbours."""

    def __init__(self, phrases: Iterable[str]) -> None:
        counts = Counter(word for phrase in phrases for word in words(phrase))
        self._forms: dict[str, str] = {}  # folded -> the most frequent written form
        self._counts: dict[str, int] = {}
        for word, count in counts.most_common():
            folded = strip_accents(word)
            if folded not in self._forms:
                self._forms[folded] = word
            self._counts[folded] = self._counts.get(folded, 0) + count
        self._index: dict[str, list[str]] = {}
        for folded in self._forms:
            if len(folded) >= MIN_LENGTH:
                for key in (folded, *_deletions(folded)):
                    self._index.setdefault(key, []).append(folded)

    def mend(self, text: str, known: Callable[[str], bool]) -> str:
        """text with its words mended (lower case, no punctuation), or text itself when no
        word needed it. ``known(word)``: whether the encoder knows the word as a whole."""
        out, changed = [], False
        for word in words(text):
            folded = strip_accents(word)
            form = self._forms.get(folded) if folded == word else None
            if (
                form is None
                and folded not in self._forms
                and len(folded) >= MIN_LENGTH
                and not known(word)
            ):
                form = self._closest(folded)
            if form is not None and form != word:
                out.append(form)
                changed = True
            else:
                out.append(word)
        return " ".join(out) if changed else text

    def _closest(self, folded: str) -> str | None:
        candidates = {
            candidate
            for key in (folded, *_deletions(folded))
            for candidate in self._index.get(key, ())
            if _one_edit(folded, candidate)
        }
        if not candidates:
            return None
        best = max(candidates, key=lambda c: (self._counts[c], c))
        return self._forms[best]
