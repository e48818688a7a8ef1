"""The flow engine: a pure function from (definition, state, event, context) to the next state,
the replies and the actions. No I/O, no clock, no randomness. See docs/flows.md."""

from bots.engine.runtime import MAX_NODE_VISITS, step
from bots.engine.schema import DEFINITION_SCHEMA, NODE_TYPES
from bots.engine.types import (
    DEFAULT_FALLBACK_LIMIT,
    DEFAULT_INTENT_THRESHOLD,
    HUMAN,
    REASON_FALLBACK_LIMIT,
    REASON_VISITOR_REQUEST,
    RESTART,
    Context,
    DefinitionError,
    Event,
    StepResult,
)
from bots.engine.validation import lint_definition, node_links, validate_definition

__all__ = [
    "DEFAULT_FALLBACK_LIMIT",
    "DEFAULT_INTENT_THRESHOLD",
    "DEFINITION_SCHEMA",
    "HUMAN",
    "MAX_NODE_VISITS",
    "NODE_TYPES",
    "REASON_FALLBACK_LIMIT",
    "REASON_VISITOR_REQUEST",
    "RESTART",
    "Context",
    "DefinitionError",
    "Event",
    "StepResult",
    "lint_definition",
    "node_links",
    "step",
    "validate_definition",
]
