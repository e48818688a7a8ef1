"""What the matcher does differently per language: stemming, stop words, and telling which
language a visitor writes in."""

from __future__ import annotations

import threading
from functools import cache

import snowballstemmer

from bots.engine.text import words

LANGUAGES = {"en": "english", "es": "spanish", "pt": "portuguese"}


def _listed(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Function words only, written without accents (they are compared folded). Negations,
# question words and greetings stay out on purpose: "where is my order" and "when will my
# order arrive", "I can log in" and "I can't log in", "hello" and "ok" are different requests.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _listed(
        "a an the i im ive id me my mine we our us you your youre it its is are was were be "
        "been am do does did to of in on at for with from by and or so this that these those "
        "there here please pls just also some any would could should will shall "
        "can may might let lets like want wanted need um uh"
    ),
    "es": _listed(
        "el la los las un una unos unas yo me mi mis tu tus te su sus nos nuestro nuestra lo le "
        "les es son era fue ser estar esta este esto estos estas ese esa eso de del al a en con "
        "por para y e o u que se ya muy favor pues quiero quisiera necesito puedo "
        "podria gustaria"
    ),
    "pt": _listed(
        "o a os as um uma uns umas eu me mim meu minha meus minhas te tu voce seu sua seus suas "
        "nos nosso nossa lhe e eh sao era foi ser estar esta este isto isso esse essa de do da "
        "dos das no na nos nas em ao aos com por pelo pela para pra que se ja muito "
        "favor quero queria preciso posso poderia gostaria"
    ),
}


def check_language(language: str) -> str:
    """The language code itself, or ValueError naming the supported ones."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}: use one of {sorted(LANGUAGES)}")
    return language


@cache
def stemmer(language: str) -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer(LANGUAGES[check_language(language)])


# A language detected with less than this probability (among the three) is no language: short
# texts ("ok", "no", an address) are alike in all three.
DETECTION_CONFIDENCE = 0.9
_identifier = None
_identifier_lock = threading.Lock()


def _language_identifier():
    """py3langid's identifier (langid.py's model), narrowed to the supported languages."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_modelpath(
                    MODEL_DIR / MODEL_FILE, norm_probs=True
                )
                identifier.set_languages(list(LANGUAGES))
                _identifier = identifier
    return _identifier


def detect_language(text: str) -> str | None:
    """The language a visitor's text is written in ("en", "es", "pt"), or None when the text
    is too short or too mixed to tell: "quiero hablar con una persona" -> "es"; "ok" -> None."""
    if len(words(text)) < 2:
        return None
    language, probability = _language_identifier().classify(text)
    return language if probability >= DETECTION_CONFIDENCE else None
