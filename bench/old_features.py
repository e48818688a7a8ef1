"""Turns a text into the features the intent matcher weighs.

Three kinds, so that both wording and spelling count:
- "w:" the stem of each word that is not a stop word ("orders" and "ordering" -> "w:order");
- "b:" pairs of adjacent stems, stop words included ("b:cancel_order" differs from
  "b:cancel_subscript");
- "c:" character 3- and 4-grams of each folded word padded with spaces, which forgive typos
  ("trackin") and carry words the stemmer does not know;
- "t:email", "t:url" for an email or web address, taken as one thing: "staff@example.com" is an
  address, not the words "staff", "example" and "com" (whose letters look like "start over").
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from bots.engine.text import strip_accents, words
from bots.nlu.language import STOP_WORDS, check_language, stemmer

CHAR_NGRAMS = (3, 4)
_MEMO_LIMIT = 50_000
_ADDRESS = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\bhttps?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*",
    re.IGNORECASE,
)


def _pieces(text: str) -> Iterator[tuple[str, str | None]]:
    """The text cut around its addresses: (piece, None) for plain text, (address, kind)."""
    position = 0
    for match in _ADDRESS.finditer(text):
        yield text[position : match.start()], None
        yield match.group(0), ("email" if "@" in match.group(0) else "url")
        position = match.end()
    yield text[position:], None


class Analyzer:
    """Features of a text in one language; remembers the words it has seen (thread-safe)."""

    def __init__(self, language: str) -> None:
        self.language = check_language(language)
        self._stop_words = STOP_WORDS[language]
        self._stemmer = stemmer(language)
        self._lock = threading.Lock()  # Snowball stemmers keep state while they work.
        self._memo: dict[str, tuple[str, str, tuple[str, ...]]] = {}

    def analyze(self, text: str) -> tuple[str, list[str]]:
        """(the folded text, its features): "Where's my ORDER?" -> ("wheres my order", [...])."""
        features: list[str] = []
        folded_words: list[str] = []
        previous = None
        for piece, address in _pieces(text):
            if address is not None:
                folded_words.append(f"<{address}>")
                features.append("t:" + address)
                previous = None
                continue
            for word in words(piece):
                folded, stem, grams = self._word(word)
                folded_words.append(folded)
                if folded not in self._stop_words:
                    features.append("w:" + stem)
                if previous is not None:
                    features.append(f"b:{previous}_{stem}")
                previous = stem
                features.extend(grams)
        return " ".join(folded_words), features

    def _word(self, word: str) -> tuple[str, str, tuple[str, ...]]:
        known = self._memo.get(word)
        if known is not None:
            return known
        folded = strip_accents(word)
        if len(word) <= 3:  # short words are left alone: Portuguese "não" is not "na"
            stem = folded
        else:
            with self._lock:
                stem = strip_accents(self._stemmer.stemWord(word))
        padded = f" {folded} "
        grams = tuple(
            "c:" + padded[i : i + n]
            for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1)
            for i in range(len(padded) - n + 1)
        )
        entry = (folded, stem, grams)
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[word] = entry
        return entry
