"""The intent matcher as it was before the sentence-embedding one (bots/nlu/matcher.py), kept for
bench/engine.py to measure the new one beside it in the same run.

It was trained with scikit-learn when a bot version was published, and ran with numpy.

Training fits a TF-IDF vectoriser (features from `bots.nlu.features`) and a multinomial logistic
regression. The trained model is exported as plain lists (`to_dict`), small weights pruned, so
that it can be stored in the published version and loaded without scikit-learn; `classify`
then computes the same TF-IDF vector and softmax by hand, which is far faster than going through
scikit-learn's pipeline for one text at a time.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bench.old_features import Analyzer
from bots.engine.text import fold
from bots.engine.types import DEFAULT_INTENT_THRESHOLD
from bots.nlu.builtin import BUILTIN_INTENTS as _BUILTIN
from bots.nlu.builtin import OUT_OF_SCOPE
from bots.nlu.builtin import OUT_OF_SCOPE_PHRASES as _OUT_OF_SCOPE
from bots.nlu.language import check_language

# The lists as the old matcher had them: one list each, every language in it.
BUILTIN_INTENTS = {name: [p for ps in by.values() for p in ps] for name, by in _BUILTIN.items()}
OUT_OF_SCOPE_PHRASES = [p for ps in _OUT_OF_SCOPE.values() for p in ps]

FORMAT = "chattonic.intent-matcher/2"
# A confidence below this is "no intent" unless the bot sets its own threshold (the engine's
# default, chosen on the shipped hold-out set: see docs/flows.md).
DEFAULT_THRESHOLD = DEFAULT_INTENT_THRESHOLD
# Inverse regularisation strength: higher fits the training phrases more tightly and gives
# sharper confidences; 30 was best on the shipped hold-out sets among 10, 30 and 100.
REGULARIZATION = 30.0
# Weights smaller than this share of the largest one are dropped from the exported model: it
# shrinks the model about tenfold and did not change the hold-out accuracy.
PRUNE_SHARE = 0.08


class IntentMatcher:
    """Classifies a visitor's text into one of a bot's intents, with a confidence in [0, 1]."""

    def __init__(
        self,
        *,
        language: str,
        classes: list[str],
        features: list[str],
        idf: np.ndarray,
        weights: np.ndarray,
        bias: np.ndarray,
        exact: dict[str, str],
    ) -> None:
        self.language = check_language(language)
        self._classes = classes  # the bot's intents, the built-in ones, and OUT_OF_SCOPE
        self.intents = [name for name in classes if name != OUT_OF_SCOPE]
        self._features = features
        self._vocabulary = {feature: index for index, feature in enumerate(features)}
        self._idf = idf
        self._weights = weights  # (features, classes)
        self._bias = bias
        self._exact = exact
        self._analyzer = Analyzer(language)

    # -- training -------------------------------------------------------------------------

    @classmethod
    def train(cls, intents: Iterable[Mapping[str, Any]], language: str) -> IntentMatcher:
        """Train on the bot's intents ({"name", "phrases"}), the built-in global ones, and the
        hidden out-of-scope class."""
        analyzer = Analyzer(language)
        phrases_by_intent = _merge_phrases(intents)
        texts = [text for name, phrases in phrases_by_intent.items() for text in phrases]
        labels = [name for name, phrases in phrases_by_intent.items() for _ in phrases]
        vectorizer, model = _estimators(analyzer)
        model.fit(vectorizer.fit_transform(texts), labels)

        coef = model.coef_
        if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row, the second class's
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            bias = np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
        else:
            bias = model.intercept_
        cutoff = PRUNE_SHARE * float(np.abs(coef).max(initial=0.0))
        weights = np.where(np.abs(coef) >= cutoff, coef, 0.0).T.round(3)

        features = [""] * len(vectorizer.vocabulary_)
        for feature, index in vectorizer.vocabulary_.items():
            features[index] = feature
        return cls(
            language=language,
            classes=[str(name) for name in model.classes_],
            features=features,
            idf=vectorizer.idf_.round(4),
            weights=weights,
            bias=np.asarray(bias).round(4),
            exact=_exact_phrases(analyzer, phrases_by_intent),
        )

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> IntentMatcher:
        """Train on a bot definition's "intents", in its settings' language (English if none)."""
        language = (definition.get("settings") or {}).get("language") or "en"
        return cls.train(definition.get("intents") or [], language)

    # -- classifying ----------------------------------------------------------------------

    def classify(self, text: str, threshold: float = 0.0) -> tuple[str | None, float]:
        """The most likely intent and its confidence, or None for the intent when the confidence
        is below threshold or the text looks like no request at all (then the confidence is the
        best intent's).

        A text equal to one of an intent's training phrases (after folding case, accents and
        punctuation) is that intent with confidence 1.0; a text with no known feature is
        (None, 0.0).
        """
        folded, features = self._analyzer.analyze(text)
        exact = self._exact.get(folded)
        if exact is not None:
            return (None, 0.0) if exact == OUT_OF_SCOPE else (exact, 1.0)
        probabilities = self._probabilities(features)
        if probabilities is None:
            return None, 0.0
        best = int(probabilities.argmax())
        if self._classes[best] == OUT_OF_SCOPE:
            probabilities[best] = -1.0
            return None, float(probabilities.max())
        confidence = float(probabilities[best])
        return (self._classes[best] if confidence >= threshold else None), confidence

    def rank(
        self, text: str, top: int = 3, *, with_out_of_scope: bool = False
    ) -> list[tuple[str, float]]:
        """The top intents with their confidences, best first (for the sandbox and debugging);
        the out-of-scope class is left out unless asked for."""
        folded, features = self._analyzer.analyze(text)
        if folded in self._exact:
            exact = self._exact[folded]
            return [] if exact == OUT_OF_SCOPE and not with_out_of_scope else [(exact, 1.0)]
        probabilities = self._probabilities(features)
        if probabilities is None:
            return []
        ranked = (
            (self._classes[i], float(probabilities[i]))
            for i in np.argsort(-probabilities, kind="stable")
        )
        if not with_out_of_scope:
            ranked = (pair for pair in ranked if pair[0] != OUT_OF_SCOPE)
        return list(itertools.islice(ranked, top))

    def _probabilities(self, features: list[str]) -> np.ndarray | None:
        """The softmax over the classes of the text's features; None if none is known."""
        scores = self._scores(features)
        if scores is None:
            return None
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        return probabilities

    def _scores(self, features: list[str]) -> np.ndarray | None:
        vocabulary = self._vocabulary
        known = [(vocabulary[f], n) for f, n in Counter(features).items() if f in vocabulary]
        if not known:
            return None
        indices = np.array([index for index, _ in known], dtype=np.intp)
        tf = np.array([n for _, n in known], dtype=np.float64)
        vector = (np.log(tf) + 1.0) * self._idf[indices]  # sublinear tf, as in training
        vector /= np.sqrt(vector @ vector)
        return vector @ self._weights[indices] + self._bias

    # -- storing --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: plain lists and numbers, sparse weights per intent."""
        columns = []
        for column in self._weights.T:
            nonzero = np.flatnonzero(column)
            columns.append({"features": nonzero.tolist(), "weights": column[nonzero].tolist()})
        return {
            "format": FORMAT,
            "language": self.language,
            "classes": list(self._classes),
            "features": list(self._features),
            "idf": self._idf.tolist(),
            "bias": self._bias.tolist(),
            "weights": columns,
            "exact": dict(self._exact),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntentMatcher:
        """Load what `to_dict` made; ValueError if it is not that format."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not an intent matcher of format {FORMAT}: {data.get('format')!r}")
        features = list(data["features"])
        classes = list(data["classes"])
        weights = np.zeros((len(features), len(classes)))
        for column, sparse in enumerate(data["weights"]):
            weights[np.asarray(sparse["features"], dtype=np.intp), column] = sparse["weights"]
        return cls(
            language=data["language"],
            classes=classes,
            features=features,
            idf=np.asarray(data["idf"], dtype=np.float64),
            weights=weights,
            bias=np.asarray(data["bias"], dtype=np.float64),
            exact=dict(data["exact"]),
        )


def _estimators(analyzer: Analyzer) -> tuple[Any, Any]:
    """scikit-learn's TF-IDF vectoriser and logistic regression, as the matcher trains them.

    Classes are weighted by their size ("balanced"), so that the out-of-scope class, larger
    than a small bot's intents, does not win by numbers alone. The "sag" solver with a fixed
    random_state is deterministic and was the fastest here.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer=lambda text: analyzer.analyze(text)[1], sublinear_tf=True)
    model = LogisticRegression(
        C=REGULARIZATION, solver="sag", max_iter=5000, random_state=0, class_weight="balanced"
    )
    return vectorizer, model


def _merge_phrases(intents: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Built-in phrases first, then the bot's (an intent named twice gets both lists), then the
    out-of-scope phrases that are none of those."""
    merged: dict[str, list[str]] = {
        name: list(phrases) for name, phrases in BUILTIN_INTENTS.items()
    }
    for intent in intents:
        name = str(intent["name"])
        phrases = [str(p) for p in intent.get("phrases", ()) if str(p).strip()]
        merged.setdefault(name, []).extend(phrases)
    taken = {fold(phrase) for phrases in merged.values() for phrase in phrases}
    merged[OUT_OF_SCOPE] = [p for p in OUT_OF_SCOPE_PHRASES if fold(p) not in taken]
    return {name: phrases for name, phrases in merged.items() if phrases}


def _exact_phrases(analyzer: Analyzer, phrases_by_intent: dict[str, list[str]]) -> dict[str, str]:
    """Folded training phrase -> intent, leaving out phrases that two intents share."""
    owners: dict[str, set[str]] = {}
    for name, phrases in phrases_by_intent.items():
        for phrase in phrases:
            folded = analyzer.analyze(phrase)[0]
            if folded:
                owners.setdefault(folded, set()).add(name)
    return {folded: next(iter(names)) for folded, names in owners.items() if len(names) == 1}
