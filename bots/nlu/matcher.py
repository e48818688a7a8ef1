"""The intent matcher: sentence embeddings and character n-grams, nearest phrases, a calibrated
threshold.

Training (when a version is published, in the worker) embeds every training phrase with the
multilingual sentence encoder (`bots.nlu.encoder`) and weighs its character n-grams (TF-IDF over
the folded text: case, accents and punctuation gone, so "atencion" is "Atención" and a typo
keeps most of a word's n-grams). A visitor's text is scored against each intent by:

- meaning: the cosine of its embedding with the intent's nearest phrase and with the intent's
  centroid (paraphrases that share no word, and other languages);
- spelling: the cosine of its n-grams with the intent's nearest phrase (typos, words the
  encoder does not know, near-exact phrases);

- a linear read-out of the embedding: ridge regression of the intents on the training phrases'
  embeddings (closed form, milliseconds to fit), which learns which directions of the
  embedding tell this bot's intents apart rather than weighing every direction alike;

fused with fixed weights. The platform's out-of-scope phrases (chit-chat, weather, jokes, other
businesses' questions, in every language) are one more class: a text nearest to them is no
intent. A text equal to a training phrase, once folded, is that intent for certain.

The threshold is the bot's own: at training, every phrase is classified with itself left out
(the bot's, the global intents' and the out-of-scope ones), and the lowest fused score that
still rejects TARGET_REJECTION of the out-of-scope ones is kept. Confidences are scaled so that this
score is DEFAULT_THRESHOLD: the engine's default then means "as calibrated for this bot". The
same pass gives the estimates the dashboard shows (accuracy, rejection, confused phrases).
"""

from __future__ import annotations

import base64
import re
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from bots.engine.text import fold
from bots.engine.types import DEFAULT_INTENT_THRESHOLD
from bots.nlu.builtin import BUILTIN_INTENTS, OUT_OF_SCOPE, OUT_OF_SCOPE_PHRASES
from bots.nlu.encoder import load_encoder
from bots.nlu.language import check_language, detect_language
from bots.nlu.speller import Speller

# 5: the built-in intents' handicap and the calibration that leaves translations out (a stored
# model of format 4 was calibrated without them: its version is trained again).
FORMAT = "chattonic.intent-matcher/5"
DEFAULT_THRESHOLD = DEFAULT_INTENT_THRESHOLD
# The fused score: meaning by nearest phrase and by centroid, spelling by nearest phrase.
# Chosen on the English hold-out sets of intents_50.json (never on the multilingual evaluation
# set): centroid-heavy weights took paraphrases from 0.65 to 0.75 and kept typos at 0.99.
WEIGHT_NEAREST = 0.3
WEIGHT_CENTROID = 0.5
WEIGHT_SPELLING = 0.2
# The ridge read-out's weight in the fused score, and its regularisation. Chosen by group
# cross-validation on the training phrases of tests/bots/data/multilingual_eval*.json (one
# phrase of every intent left out in every language at once) and on intents_50.json's hold-out
# sets, never on an evaluation set's test phrases: top-1 0.899 -> 0.904 and 0.817 -> 0.842 on
# the two, paraphrases 0.752 -> 0.776, typos unchanged (0.989).
WEIGHT_RIDGE = 0.3
RIDGE_LAMBDA = 0.3
CHAR_NGRAMS = (2, 4)
# Visitors' typing mended before the encoder reads it (bots.nlu.speller).
MEND_TYPING = True
# A text whose n-grams are this close to a training phrase's (a typo or two, a missing accent)
# means what that phrase means: its stored embedding stands for the text's. Chosen on
# intents_50.json's `test` (visitors' typos), where it changes no answer.
SPELLED_ALIKE = 0.9
# The built-in global intents ("human", "restart"), trained in every bot with many generic
# phrases ("I want to talk to someone"), draw a bot's own paraphrases ("is anybody there on
# sunday?"): their fused score is lowered by this much. Chosen on the development sets
# (tests/bots/data/multilingual_dev*.json): top-1 0.840 -> 0.851, out-of-scope unchanged.
BUILTIN_HANDICAP = 0.06
# At calibration, a phrase is left out with its translations: the phrases of its class in another
# language at least this alike (cosine of their embeddings).
TRANSLATION_SIMILARITY = 0.7
# The calibrated threshold stays within these bounds, whatever few phrases a bot has.
THRESHOLD_BOUNDS = (0.3, 0.8)
# The share of out-of-scope phrases the calibrated threshold rejects (left out one at a time):
# the goal is 0.85 on visitors' messages, and a held-out estimate is optimistic.
TARGET_REJECTION = 0.9
# The margins by which the out-of-scope class may have to beat the best intent, tried at
# calibration (0: it wins when it scores higher).
OUT_OF_SCOPE_MARGINS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)
# Confused pairs kept in the report for the dashboard.
MAX_CONFUSIONS = 20
# What a matcher made of the texts visitors send again and again ("hi", "yes", a button's
# title typed, "how much is it"): kept per matcher (a version's never changes), for texts of
# at most UNDERSTOOD_TEXT characters, the UNDERSTOOD_CACHE most recent. The language guess
# alone costs about 40 us a message in the web chat's database thread (bench/webchat.py).
UNDERSTOOD_CACHE = 1024
UNDERSTOOD_TEXT = 120
# A message of several sentences ("Hi again, it's me about order 1234. talk to a person") is
# also understood a sentence at a time: what it asks for is often one of them, whose meaning
# the others dilute. The clearest intent found wins (the whole message's, or a sentence's).
# At most this many sentences are read (the first and the last ones: a long message's
# request opens or closes it).
MAX_SENTENCES = 4
_SENTENCE_END = re.compile(r"(?<=[.!?;¡¿])\s+|\n+")


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the matcher made of a text: the intent (None: none, or below the threshold), its
    confidence, and the language the text is written in (None: too short to tell)."""

    intent: str | None
    confidence: float
    language: str | None


def char_ngrams(text: str) -> list[str]:
    """The character 2- to 4-grams of each folded word, padded with a space each side (as
    scikit-learn's "char_wb"): "Atención!" -> [" a", "at", ..., " at", ...]."""
    grams: list[str] = []
    low, high = CHAR_NGRAMS
    for word in fold(text).split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if n > len(padded):
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class IntentMatcher:
    """Classifies a visitor's text into one of a bot's intents, with a confidence in [0, 1]."""

    def __init__(
        self,
        *,
        language: str,
        classes: list[str],
        phrases: list[str],
        labels: np.ndarray,
        languages: list[str],
        embeddings: np.ndarray,
        vocabulary: list[str],
        idf: np.ndarray,
        threshold: float,
        report: dict[str, Any],
        readout: np.ndarray | None = None,
        margin: float = 0.0,
    ) -> None:
        self.language = check_language(language)
        self._classes = classes
        self.intents = [name for name in classes if name != OUT_OF_SCOPE]
        self._out_of_scope = classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else -1
        self._builtin = np.array([i for i, n in enumerate(classes) if n in BUILTIN_INTENTS], int)
        self._phrases = phrases
        self._labels = labels  # class index per phrase; phrases are sorted by class
        self._languages = languages
        self._embeddings = embeddings.astype(np.float32)
        self._vocabulary_list = vocabulary
        self._vocabulary = {gram: index for index, gram in enumerate(vocabulary)}
        self._idf = idf
        self.threshold = threshold  # the raw fused score that is DEFAULT_THRESHOLD
        # What the out-of-scope class's score must beat the best intent's by (calibrated).
        self.margin = margin
        self.report = report
        self._starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
        # The ridge read-out: (dimensions, classes); fitted here unless given (a stored model).
        self._readout = (
            readout.astype(np.float32)
            if readout is not None
            else _fit_ridge(self._embeddings, labels, len(classes))[0]
        )
        centroids = np.add.reduceat(self._embeddings, self._starts, axis=0)
        self._centroids = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        # For a visitor's text: each n-gram's phrases and weights (an inverted index, read with
        # plain numpy: scipy's sparse indexing costs more than the arithmetic here).
        grams = _char_matrix(phrases, self._vocabulary, idf).T.tocsr()
        self._gram_starts = grams.indptr
        self._gram_phrases = grams.indices.astype(np.intp)
        self._gram_weights = grams.data
        self._grams_by_phrase = grams
        self._exact: dict[str, int] = {}
        owners: dict[str, set[int]] = {}
        for phrase, label in zip(phrases, labels, strict=True):
            owners.setdefault(fold(phrase), set()).add(int(label))
        self._exact = {key: next(iter(v)) for key, v in owners.items() if key and len(v) == 1}
        self._speller = Speller(phrases) if MEND_TYPING else None
        # Thread-safe (the web chat's database threads share a version's matcher).
        self._understood = lru_cache(maxsize=UNDERSTOOD_CACHE)(self._understand)
        _matchers.add(self)

    # -- training -------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        intents: Iterable[Mapping[str, Any]],
        language: str,
        translations: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> IntentMatcher:
        """Train on the bot's intents ({"name", "phrases"} in `language`), their phrases in
        other languages (a definition's translations: {"es": {"intents": {name: [...]}}}), the
        built-in global intents and the out-of-scope class; calibrate the threshold."""
        check_language(language)
        examples = _examples(intents, language, translations or {})
        classes = [*sorted({name for name, _, _ in examples} - {OUT_OF_SCOPE}), OUT_OF_SCOPE]
        index = {name: i for i, name in enumerate(classes)}
        examples.sort(key=lambda example: index[example[0]])
        phrases = [text for _, text, _ in examples]
        labels = np.array([index[name] for name, _, _ in examples], dtype=np.int32)
        languages = [lang for _, _, lang in examples]

        vocabulary, idf = _fit_char_idf(phrases)
        embeddings = _embed(phrases)
        matcher = cls(
            language=language,
            classes=classes,
            phrases=phrases,
            labels=labels,
            languages=languages,
            embeddings=embeddings,
            vocabulary=vocabulary,
            idf=idf,
            threshold=0.5,
            report={},
        )
        matcher.threshold, matcher.margin, matcher.report = matcher._calibrate()
        return matcher

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> IntentMatcher:
        """Train on a bot definition's "intents" and "translations", in its settings' language
        (English if none)."""
        language = (definition.get("settings") or {}).get("language") or "en"
        return cls.train(
            definition.get("intents") or [], language, definition.get("translations") or {}
        )

    def _calibrate(self) -> tuple[float, float, dict[str, Any]]:
        """Leave-one-out over the training phrases: the threshold, the out-of-scope margin,
        and the estimates."""
        raw = self._leave_one_out_scores()  # (phrases, classes)
        out = self._out_of_scope
        in_scope = self._labels != out
        top_intent = np.where(np.arange(len(self._classes)) == out, -np.inf, raw).argmax(1)
        top_score = raw[np.arange(len(raw)), top_intent]
        right = in_scope & (top_intent == self._labels)
        n_in, n_out = max(int(in_scope.sum()), 1), max(int((~in_scope).sum()), 1)
        # For each margin the out-of-scope class must win by, the lowest threshold that still
        # rejects TARGET_REJECTION of the out-of-scope phrases left out one at a time; of
        # those, the pair that accepts the most right answers (the smaller margin on a tie).
        chosen = None
        for margin in OUT_OF_SCOPE_MARGINS if out >= 0 else (0.0,):
            scores = raw.copy()
            if out >= 0:
                scores[:, out] -= margin
            best = scores.argmax(axis=1)
            threshold = None
            for t in np.linspace(*THRESHOLD_BOUNDS, 51):
                accepted = (best != out) & (top_score >= t)
                if (~in_scope & ~accepted).sum() / n_out >= TARGET_REJECTION:
                    threshold = float(t)
                    break
            if threshold is None:
                continue
            kept = int((right & accepted).sum())
            if chosen is None or kept > chosen[0]:
                chosen = (kept, margin, threshold, accepted)
        if chosen is None:
            best = raw.argmax(axis=1)
            margin, threshold = 0.0, THRESHOLD_BOUNDS[1]
            accepted = (best != out) & (top_score >= threshold)
        else:
            _, margin, threshold, accepted = chosen
        confusions = []
        wrong = np.flatnonzero(in_scope & ~right)
        for i in wrong[np.argsort(-top_score[wrong])][:MAX_CONFUSIONS]:
            confusions.append(
                {
                    "phrase": self._phrases[i],
                    "intent": self._classes[self._labels[i]],
                    "taken_for": self._classes[top_intent[i]],
                }
            )
        # The bot's own intents apart: the built-in ones (talk to a human, start over) are
        # trained in every bot, so a bot with no intents of its own is not "100 %" of anything.
        builtin = [i for i, name in enumerate(self._classes) if name in BUILTIN_INTENTS]
        own = in_scope & ~np.isin(self._labels, builtin)
        n_own = int(own.sum())
        report = {
            "own_intents": len(self._classes) - len(builtin) - (1 if out >= 0 else 0),
            "own_phrases": n_own,
            "own_accuracy": round(float((own & right).sum()) / n_own, 3) if n_own else None,
            "own_right_and_accepted": round(float((own & right & accepted).sum()) / n_own, 3)
            if n_own
            else None,
            "phrases": int(in_scope.sum()),
            "accuracy": round(float(right.sum()) / n_in, 3),
            "right_and_accepted": round(float((right & accepted).sum()) / n_in, 3),
            "out_of_scope_rejected": round(float((~in_scope & ~accepted).sum()) / n_out, 3),
            "confusions": confusions,
        }
        return threshold, float(margin), report

    def _leave_one_out_scores(self) -> np.ndarray:
        """Each training phrase's fused scores as if trained without it and without its
        translations: the phrases of its class in another language at least
        TRANSLATION_SIMILARITY alike (the out-of-scope phrases and the bot's phrases are given
        in several languages; a phrase scored beside its own translation looks surer than a
        visitor's message is)."""
        n = len(self._phrases)
        rows = np.arange(n)
        similar = self._embeddings @ self._embeddings.T
        languages = np.asarray(self._languages)
        left_out = (self._labels[:, None] == self._labels[None, :]) & (
            (languages[:, None] != languages[None, :]) & (similar >= TRANSLATION_SIMILARITY)
        )
        left_out[rows, rows] = True
        grams = self._grams_by_phrase.T.tocsr()
        spelled = (grams @ grams.T).toarray()
        similar[left_out] = -1.0
        spelled[left_out] = 0.0
        nearest = np.maximum.reduceat(similar, self._starts, axis=1)
        nearest_spelled = np.maximum.reduceat(spelled, self._starts, axis=1)
        sums = np.add.reduceat(self._embeddings, self._starts, axis=0)
        centroid = (self._embeddings @ sums.T) / np.linalg.norm(sums, axis=1)
        # The phrase's own class's centroid without what is left out with it.
        from scipy.sparse import csr_matrix

        own = sums[self._labels] - csr_matrix(left_out, dtype=np.float32) @ self._embeddings
        own_dot = (own * self._embeddings).sum(axis=1)
        own_norm = np.linalg.norm(own, axis=1)
        centroid[rows, self._labels] = np.where(
            own_norm > 1e-6, own_dot / np.maximum(own_norm, 1e-6), -1.0
        )
        # The ridge read-out as if fitted without the phrase and its translations (the closed
        # form of leaving a group out of ridge regression: the group's residuals times
        # (I - H)^-1, H the group's block of the hat matrix; one phrase: (y_hat - h y) / (1 - h)).
        weights, inverse = _fit_ridge(self._embeddings, self._labels, len(self._classes))
        x = self._embeddings.astype(np.float64)
        fitted = x @ weights
        targets = np.zeros_like(fitted)
        targets[rows, self._labels] = 1.0
        leverage = ((x @ inverse) * x).sum(axis=1)
        residual = targets - fitted
        readout = targets - residual / np.maximum(1.0 - leverage, 1e-6)[:, None]
        group_sizes = left_out.sum(axis=1)
        for i in np.flatnonzero(group_sizes > 1):
            group = np.r_[i, np.flatnonzero(left_out[i] & (rows != i))]
            hat = x[group] @ inverse @ x[group].T
            errors = np.linalg.solve(np.eye(len(group)) - hat, residual[group])
            readout[i] = targets[i] - errors[0]
        scores = (
            WEIGHT_NEAREST * nearest
            + WEIGHT_CENTROID * centroid
            + WEIGHT_SPELLING * nearest_spelled
            + WEIGHT_RIDGE * readout
        )
        scores[:, self._builtin] -= BUILTIN_HANDICAP
        return scores

    # -- classifying ----------------------------------------------------------------------

    def understand(self, text: str, threshold: float = DEFAULT_THRESHOLD) -> Understanding:
        """The intent of text (None below threshold, or when the text is out of scope), its
        confidence (the best intent's, even when rejected), and the text's language. A short
        text is understood once per matcher (``UNDERSTOOD_CACHE``)."""
        if len(text) <= UNDERSTOOD_TEXT:
            return self._understood(text, threshold)
        return self._understand(text, threshold)

    def _understand(self, text: str, threshold: float) -> Understanding:
        language = detect_language(text)
        understood = self._understand_in(text, threshold, language)
        if understood.confidence >= 1.0:
            return understood
        for sentence in sentences(text):
            found = self._understand_in(sentence, threshold, language)
            if found.intent is not None and (
                understood.intent is None or found.confidence > understood.confidence
            ):
                understood = found
        return understood

    def _understand_in(self, text: str, threshold: float, language: str | None) -> Understanding:
        folded = fold(text)
        exact = self._exact.get(folded)
        if exact is not None:
            if exact == self._out_of_scope:
                return Understanding(None, 0.0, language)
            return Understanding(self._classes[exact], 1.0, language)
        scores = self._scores(text, folded)
        if scores is None:
            return Understanding(None, 0.0, language)
        best = int(scores.argmax())
        if best == self._out_of_scope:
            scores[best] = -np.inf
            return Understanding(None, self._confidence(float(scores.max())), language)
        confidence = self._confidence(float(scores[best]))
        intent = self._classes[best] if confidence >= threshold else None
        return Understanding(intent, confidence, language)

    def classify(self, text: str, threshold: float = 0.0) -> tuple[str | None, float]:
        """(intent, confidence): `understand` without the language."""
        understood = self.understand(text, threshold)
        return understood.intent, understood.confidence

    def rank(
        self, text: str, top: int = 3, *, with_out_of_scope: bool = False
    ) -> list[tuple[str, float]]:
        """The top intents with their confidences, best first (for the sandbox and debugging);
        the out-of-scope class is left out unless asked for."""
        folded = fold(text)
        exact = self._exact.get(folded)
        if exact is not None and (exact != self._out_of_scope or with_out_of_scope):
            return [(self._classes[exact], 1.0)]
        scores = self._scores(text, folded)
        if scores is None:
            return []
        ranked = [
            (self._classes[i], self._confidence(float(scores[i])))
            for i in np.argsort(-scores, kind="stable")
            if with_out_of_scope or i != self._out_of_scope
        ]
        return ranked[:top]

    def _scores(self, text: str, folded: str) -> np.ndarray | None:
        if not folded:
            return None
        columns, weights = _char_vector(folded, self._vocabulary, self._idf)
        if len(columns):
            # The text's n-grams against every phrase's: the inverted index's rows of its grams.
            starts, ends = self._gram_starts[columns], self._gram_starts[columns + 1]
            lengths = ends - starts
            positions = np.repeat(ends - np.cumsum(lengths), lengths) + np.arange(lengths.sum())
            spelled = np.bincount(
                self._gram_phrases[positions],
                weights=self._gram_weights[positions] * np.repeat(weights, lengths),
                minlength=len(self._phrases),
            )
        else:
            spelled = np.zeros(len(self._phrases))
        closest = int(spelled.argmax())
        if spelled[closest] >= SPELLED_ALIKE:
            # A training phrase with a typo or two: its meaning is that phrase's (the encoder's
            # pass, most of a classification's time, is not needed for it).
            embedding = self._embeddings[closest]
        else:
            embedding = embed_query(self._mended(text))
        scores = WEIGHT_NEAREST * np.maximum.reduceat(self._embeddings @ embedding, self._starts)
        scores += WEIGHT_CENTROID * (self._centroids @ embedding)
        scores += WEIGHT_SPELLING * np.maximum.reduceat(spelled, self._starts)
        scores += WEIGHT_RIDGE * (embedding @ self._readout)
        scores[self._builtin] -= BUILTIN_HANDICAP
        if self._out_of_scope >= 0:
            scores[self._out_of_scope] -= self.margin
        return scores

    def _mended(self, text: str) -> str:
        """The text as the encoder should read it: accents put back, one-letter typos mended
        against the training phrases' words (bots.nlu.speller)."""
        if self._speller is None:
            return text
        return self._speller.mend(text, load_encoder().knows)

    def _confidence(self, score: float) -> float:
        """The fused score scaled so that the calibrated threshold is DEFAULT_THRESHOLD and
        1.0 stays 1.0 (monotonic, piecewise linear)."""
        t = self.threshold
        if score <= t:
            value = DEFAULT_THRESHOLD * max(score, 0.0) / t
        else:
            value = DEFAULT_THRESHOLD + (1 - DEFAULT_THRESHOLD) * (score - t) / (1 - t)
        return round(min(max(value, 0.0), 1.0), 4)

    # -- storing --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form; the phrases' embeddings as base64 float16."""
        return {
            "format": FORMAT,
            "encoder": load_encoder().name,
            "language": self.language,
            "classes": list(self._classes),
            "phrases": list(self._phrases),
            "labels": self._labels.tolist(),
            "languages": list(self._languages),
            "embeddings": base64.b64encode(self._embeddings.astype("<f2").tobytes()).decode(),
            "vocabulary": list(self._vocabulary_list),
            "idf": self._idf.round(4).tolist(),
            "readout": base64.b64encode(self._readout.astype("<f2").tobytes()).decode(),
            "threshold": self.threshold,
            "margin": self.margin,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntentMatcher:
        """Load what `to_dict` made; ValueError if it is not that format or encoder."""
        if data.get("format") != FORMAT or data.get("encoder") != load_encoder().name:
            raise ValueError(f"not an intent matcher of format {FORMAT}: {data.get('format')!r}")
        phrases = list(data["phrases"])
        embeddings = np.frombuffer(base64.b64decode(data["embeddings"]), dtype="<f2")
        readout = np.frombuffer(base64.b64decode(data["readout"]), dtype="<f2")
        return cls(
            language=data["language"],
            classes=list(data["classes"]),
            phrases=phrases,
            labels=np.asarray(data["labels"], dtype=np.int32),
            languages=list(data["languages"]),
            embeddings=embeddings.reshape(len(phrases), -1).astype(np.float32),
            vocabulary=list(data["vocabulary"]),
            idf=np.asarray(data["idf"], dtype=np.float64),
            threshold=float(data["threshold"]),
            margin=float(data.get("margin", 0.0)),
            report=dict(data.get("report") or {}),
            readout=readout.reshape(embeddings.size // len(phrases), -1).astype(np.float32),
        )


def _examples(
    intents: Iterable[Mapping[str, Any]],
    language: str,
    translations: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, str, str]]:
    """(class, phrase, language) for every training phrase: the built-in ones first, the
    bot's (an intent named twice gets both lists), then the out-of-scope phrases that are
    none of those. A phrase given twice to one class counts once."""
    examples: list[tuple[str, str, str]] = []
    for name, by_language in BUILTIN_INTENTS.items():
        examples += [(name, p, lang) for lang, phrases in by_language.items() for p in phrases]
    for intent in intents:
        name = str(intent["name"])
        examples += [(name, str(p), language) for p in intent.get("phrases", ()) if str(p).strip()]
    for other, texts in translations.items():
        for name, phrases in ((texts or {}).get("intents") or {}).items():
            examples += [(str(name), str(p), other) for p in phrases if str(p).strip()]
    taken = {fold(phrase) for _, phrase, _ in examples}
    for lang, phrases in OUT_OF_SCOPE_PHRASES.items():
        examples += [(OUT_OF_SCOPE, p, lang) for p in phrases if fold(p) not in taken]
    seen: set[tuple[str, str]] = set()
    unique = []
    for example in examples:
        key = (example[0], fold(example[1]))
        if key not in seen and key[1]:
            seen.add(key)
            unique.append(example)
    return unique


def _fit_ridge(
    embeddings: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression of the one-hot classes on the embeddings: the weights (dimensions,
    classes) and (X'X + lambda I)^-1, which leave-one-out needs."""
    x = embeddings.astype(np.float64)
    inverse = np.linalg.inv(x.T @ x + RIDGE_LAMBDA * np.eye(x.shape[1]))
    targets = np.zeros((len(labels), classes))
    targets[np.arange(len(labels)), labels] = 1.0
    return inverse @ (x.T @ targets), inverse


_embedding_memo: dict[str, np.ndarray] = {}
_MEMO_LIMIT = 20_000


def _embed(texts: list[str]) -> np.ndarray:
    """Embeddings of texts; the built-in and out-of-scope phrases, in every bot, are
    embedded once per process."""
    missing = list(dict.fromkeys(t for t in texts if t not in _embedding_memo))
    if len(texts) == 1 and missing:
        return load_encoder().encode(texts)
    if missing:
        for text, vector in zip(missing, load_encoder().encode(missing), strict=True):
            if len(_embedding_memo) < _MEMO_LIMIT:
                _embedding_memo[text] = vector
            else:
                return load_encoder().encode(texts)
    return np.stack([_embedding_memo[t] for t in texts])


# A visitor's texts repeat (a quick reply's title, "hi", "yes", a common question): their
# embeddings are kept, the most recent QUERY_MEMO of them, for every bot of the process.
QUERY_MEMO = 4096


@lru_cache(maxsize=QUERY_MEMO)
def _query_embedding(text: str) -> np.ndarray:
    vector = load_encoder().encode([text])[0]
    vector.flags.writeable = False
    return vector


def embed_query(text: str) -> np.ndarray:
    """One visitor text's embedding (kept for the next time the same text comes)."""
    return _query_embedding(text)


def forget_queries() -> None:
    """Empty the memo of visitors' embeddings and every matcher's understood texts
    (bench/engine.py measures new texts)."""
    _query_embedding.cache_clear()
    for matcher in list(_matchers):
        matcher._understood.cache_clear()


# The matchers alive, for forget_queries.
_matchers: weakref.WeakSet[IntentMatcher] = weakref.WeakSet()


def _fit_char_idf(phrases: list[str]) -> tuple[list[str], np.ndarray]:
    """The n-gram vocabulary and smoothed idf of the training phrases (scikit-learn's)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=char_ngrams, sublinear_tf=True)
    vectorizer.fit(phrases)
    vocabulary = [""] * len(vectorizer.vocabulary_)
    for gram, index in vectorizer.vocabulary_.items():
        vocabulary[index] = gram
    return vocabulary, vectorizer.idf_


def _char_vector(
    folded: str, vocabulary: dict[str, int], idf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One folded text's TF-IDF row as (columns, weights), as `_char_matrix` computes it."""
    counts: dict[int, int] = {}
    low, high = CHAR_NGRAMS
    for word in folded.split():
        padded = f" {word} "
        for n in range(low, min(high, len(padded)) + 1):
            for i in range(len(padded) - n + 1):
                column = vocabulary.get(padded[i : i + n])
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
    columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
    row = np.log(np.fromiter(counts.values(), float, len(counts)))
    row += 1.0
    row *= idf[columns]
    norm = np.sqrt(row @ row)
    return columns, (row / norm if norm else row)


def _char_matrix(texts: list[str], vocabulary: dict[str, int], idf: np.ndarray):
    """The texts' TF-IDF rows (sublinear tf, L2-normalised), as scikit-learn computes them."""
    from scipy.sparse import csr_matrix

    indptr, indices, values = [0], [], []
    for text in texts:
        counts: dict[int, int] = {}
        for gram in char_ngrams(text):
            column = vocabulary.get(gram)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
        row = (np.log(np.fromiter(counts.values(), float, len(counts))) + 1.0) * idf[columns]
        norm = np.sqrt(row @ row) if len(row) else 0.0
        indices.extend(columns.tolist())
        values.extend((row / norm).tolist() if norm else row.tolist())
        indptr.append(len(indices))
    return csr_matrix(
        (np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(texts), len(idf)),
    )


def sentences(text: str) -> list[str]:
    """The sentences of a message of more than one (none for one): at most MAX_SENTENCES,
    the first and the last ones."""
    found = [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]
    if len(found) < 2:
        return []
    if len(found) > MAX_SENTENCES:
        half = MAX_SENTENCES // 2
        found = found[:half] + found[-(MAX_SENTENCES - half) :]
    return found
