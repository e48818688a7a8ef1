"""Reads for bots: the runnable definition and intent matcher of a conversation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import connection

from bots.engine import lint_definition, validate_definition
from bots.models import Bot, BotVersion
from bots.nlu import IntentMatcher
from bots.services import DRAFT_SETTINGS_MESSAGE, definition_with_settings
from chattonic.core import inputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    definition: dict
    matcher: IntentMatcher


@lru_cache(maxsize=512)
def _version_runtime(version_id: int, published_at) -> Runtime:
    # Versions never change, so their trained matcher is cached for the process's life. The
    # key has the publication time too: a deleted bot's version id may be used again (SQLite).
    version = BotVersion.objects.get(pk=version_id)
    try:
        matcher = IntentMatcher.from_dict(version.nlu_model or {})
    except (ValueError, KeyError, TypeError):
        # Stored by an older matcher (or not at all): train again from the version's own
        # definition, which is what publishing trained on, and keep it for the process.
        logger.warning("bot version %s: retraining its intent matcher", version_id)
        matcher = IntentMatcher.from_definition(version.definition)
    return Runtime(version.definition, matcher)


def runtimes_warm(limit: int) -> int:
    """Load into this process the runtimes (definition and trained intent matcher) of the
    launched bots' live versions, the most recently changed first, up to ``limit``; returns
    how many. A bot's first message in a process otherwise waits for its matcher, and every
    message behind it: in bench/webchat.py the first batch after a start took 0.86 s while
    199 visitors' messages queued behind it (p99 15-30 times the echo's in that round)."""
    versions = list(
        Bot.objects.filter(launched_at__isnull=False, published_version__isnull=False)
        .order_by("-updated_at")
        .values_list("published_version_id", "published_version__published_at")[:limit]
    )
    for version_id, published_at in versions:
        _version_runtime(version_id, published_at)
    return len(versions)


def runtimes_warm_here() -> None:
    """As a web process starts (chattonic/asgi.py, in the thread that loads the matcher's
    models): ``runtimes_warm`` for ``NLU_WARM_BOTS`` bots, then the thread's connection
    closed. A database that cannot be read yet costs that thread's log line, not the
    process."""
    if not settings.NLU_WARM_BOTS:
        return
    try:
        runtimes_warm(settings.NLU_WARM_BOTS)
    finally:
        connection.close()


_draft_cache: dict[int, tuple[tuple, Runtime]] = {}


def bot_runtime(bot: Bot, version_id: int | None, published_at=None) -> Runtime:
    """The published version's runtime, or, for the sandbox (no version), the draft's.
    ``published_at``: the version's, when the caller read it already (one query less)."""
    if version_id is not None:
        if published_at is None:
            published_at = (
                BotVersion.objects.filter(pk=version_id)
                .values_list("published_at", flat=True)
                .get()
            )
        return _version_runtime(version_id, published_at)
    definition = definition_with_settings(bot, bot.draft_definition)
    key = (
        bot.draft_updated_at,
        repr(definition.get("intents")),
        repr(
            {
                lang: (t or {}).get("intents")
                for lang, t in (definition.get("translations") or {}).items()
            }
        ),
        definition["settings"]["language"],
    )
    cached = _draft_cache.get(bot.pk)
    if cached and cached[0] == key:
        return Runtime(definition, cached[1].matcher)
    # As publishing trains it: the intents' phrases in every language of the definition.
    runtime = Runtime(definition, IntentMatcher.from_definition(definition))
    _draft_cache[bot.pk] = (key, runtime)
    return runtime


def bot_refresh(bot: Bot) -> None:
    """Read every field of ``bot`` again, in place (a long-lived copy, such as a socket's)."""
    fresh = Bot.objects.get(pk=bot.pk)
    for model_field in Bot._meta.concrete_fields:
        setattr(bot, model_field.attname, getattr(fresh, model_field.attname))
    bot._state.fields_cache.clear()


def bot_by_public_key(public_key: str) -> Bot | None:
    return Bot.objects.filter(public_key=public_key).select_related("tenant").first()


def bot_has_unpublished_changes(bot: Bot) -> bool:
    """Whether publishing now would change what new conversations get: the draft or the
    bot's conversation settings differ from the live version (or nothing is live)."""
    if bot.published_version_id is None:
        return True
    return definition_with_settings(bot, bot.draft_definition) != bot.published_version.definition


def definition_problems(definition) -> dict[str, list[dict]]:
    """What the drafts' rules say of ``definition``, for the flow editor to show on the node
    and field each names: ``{"errors": [...], "warnings": [...]}``, each ``{"node", "field",
    "path", "message"}`` (node None for the parts outside the nodes). The errors are exactly
    why ``services.draft_update`` would refuse it; the warnings (unreachable nodes, unused
    intents) come only once there are no errors."""
    try:
        inputs.check_depth(definition, field="definition")
        inputs.nul_free(definition, field="definition")
    except inputs.InputError as exc:
        return {"errors": [_problem(None, "", exc.reason)], "warnings": []}
    if not isinstance(definition, dict):
        return {"errors": [_problem(None, "", "A definition is a JSON object.")], "warnings": []}
    errors = [e.as_dict() for e in validate_definition(definition)]
    if "settings" in definition:
        errors.insert(0, _problem(None, "settings", DRAFT_SETTINGS_MESSAGE))
    warnings = [] if errors else [w.as_dict() for w in lint_definition(definition)]
    return {"errors": errors, "warnings": warnings}


def _problem(node: str | None, field: str, message: str) -> dict:
    return {"node": node, "field": field, "path": field, "message": message}


def understanding_summary(version: BotVersion | None) -> dict | None:
    """The bot page's "Understanding" read-out of a published version: its matcher's own
    estimates (training phrases left out one at a time) for the bot's OWN intents. The
    built-in ones (talk to a human, start over) are trained in every bot; a bot with none of
    its own understands only those, and gets no accuracy figure (it would be the built-ins'
    alone, "100 %" of nothing the owner wrote). None before anything is published."""
    report = (version.nlu_model or {}).get("report") if version else None
    if not report:
        return None
    own_intents = [
        intent
        for intent in (version.definition or {}).get("intents") or []
        if any(str(p).strip() for p in intent.get("phrases") or ())
    ]
    if not own_intents:
        return {"own_intents": 0, "out_of_scope_rejected": report.get("out_of_scope_rejected")}
    own = report.get("own_phrases") is not None  # versions trained before kept only the totals
    return {
        "own_intents": len(own_intents),
        "phrases": report["own_phrases"] if own else report.get("phrases"),
        "accuracy": report["own_accuracy"] if own else report.get("accuracy"),
        "right_and_accepted": report["own_right_and_accepted"]
        if own
        else report.get("right_and_accepted"),
        "out_of_scope_rejected": report.get("out_of_scope_rejected"),
        "confusions": report.get("confusions") or [],
    }
