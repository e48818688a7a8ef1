"""Intent matching: which of a bot's intents a visitor's text means, and how sure that is."""

from bots.nlu.builtin import BUILTIN_INTENTS, HUMAN, RESTART
from bots.nlu.language import LANGUAGES
from bots.nlu.matcher import DEFAULT_THRESHOLD, IntentMatcher

__all__ = ["BUILTIN_INTENTS", "DEFAULT_THRESHOLD", "HUMAN", "LANGUAGES", "RESTART", "IntentMatcher"]
