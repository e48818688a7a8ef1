"""Writes for bots: create and edit, the draft, publish, roll back, launch, pause."""

from __future__ import annotations

import copy
import logging
import re
import threading
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bots import tasks
from bots.engine import DEFAULT_FALLBACK_LIMIT, DEFAULT_INTENT_THRESHOLD, validate_definition
from bots.engine.templates import template_problem
from bots.engine.text import fold
from bots.gallery import flow_template
from bots.hours import business_hours_normalize
from bots.models import LANGUAGE_CODES, Bot, BotVersion, UnmatchedPhrase
from bots.nlu import IntentMatcher
from bots.origins import origins_normalize
from chattonic.core import inputs
from chattonic.core.errors import Conflict, ValidationFailed
from chattonic.regions import region_named, wrong_region
from chattonic.regions.exchange import identity_export, peer_call
from chattonic.tenancy.models import Tenant

logger = logging.getLogger(__name__)

# Bot fields that tenant staff edit directly (not the draft, status or region lock).
EDITABLE_FIELDS = (
    "name",
    "region",
    "allowed_origins",
    "default_language",
    "welcome_text",
    "fallback_text",
    "handoff_text",
    "fallback_limit",
    "intent_threshold",
    "business_hours",
    "time_zone",
    "title",
    "theme_color",
    "prechat_form",
    "away_message",
    "ticket_after_hours",
)
# The engine's settings (a definition's "settings") and the bot field each comes from. The
# bot's fields are their one source: a draft has no "settings"; publishing writes them into
# the version (so a conversation pinned to it keeps them), and a rollback brings a version's
# back to the bot.
FLOW_SETTINGS = {
    "welcome_text": "welcome_text",
    "fallback_text": "fallback_text",
    "handoff_text": "handoff_text",
    "fallback_limit": "fallback_limit",
    "intent_threshold": "intent_threshold",
    "language": "default_language",
}
# What the engine does without a setting, as the bot field's value (a rollback to a version
# published without it).
_ENGINE_DEFAULTS = {
    "welcome_text": "",
    "fallback_text": "",
    "handoff_text": "",
    "fallback_limit": DEFAULT_FALLBACK_LIMIT,
    "intent_threshold": DEFAULT_INTENT_THRESHOLD,
    "language": "en",
}
TEMPLATED_FIELDS = ("welcome_text", "fallback_text", "handoff_text")
MAX_FALLBACK_LIMIT = 20  # as the engine's schema
DRAFT_SETTINGS_MESSAGE = (
    "The texts and thresholds are the bot's settings, not its flow's: set them on the bot "
    f"({', '.join(FLOW_SETTINGS.values())}), and publishing puts them in the version."
)


def _errors_as_fields(errors) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        key = "definition"
        if error.node:
            key += f".nodes.{error.node}"
        if error.field:
            key += f".{error.field}"
        fields.setdefault(key, []).append(error.message)
    return fields


def definition_errors_as_fields(definition: dict) -> dict[str, list[str]]:
    """A draft's validation errors keyed by ``definition.<node>.<field>``. A draft has no
    ``settings``: they are the bot's (FLOW_SETTINGS). A definition nested past
    ``inputs.MAX_DEPTH`` levels, or with a NUL character in a string, is refused first,
    whatever door it came through (nothing downstream walks it then)."""
    try:
        inputs.check_depth(definition, field="definition")
        inputs.nul_free(definition, field="definition")
    except inputs.InputError as exc:
        return exc.fields
    fields: dict[str, list[str]] = {}
    if isinstance(definition, dict) and "settings" in definition:
        fields["definition.settings"] = [DRAFT_SETTINGS_MESSAGE]
    for key, messages in _errors_as_fields(validate_definition(definition)).items():
        fields.setdefault(key, []).extend(messages)
    return fields


def definition_with_settings(bot: Bot, definition: dict) -> dict:
    """The definition as the engine runs it: the bot's texts and thresholds inside."""
    runnable = copy.deepcopy(definition)
    runnable["settings"] = {key: getattr(bot, field) for key, field in FLOW_SETTINGS.items()}
    return runnable


@cache
def time_zones() -> tuple[str, ...]:
    """Every time zone name this Python knows (IANA), sorted."""
    return tuple(sorted(available_timezones()))


def bot_fields_clean(*, bot: Bot, changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` to a bot's settings as the services store them (origins and hours
    normalised); ValidationFailed or Conflict name the field the rules refuse. Writes nothing:
    for the forms that show the refusal beside the field before they save."""
    cleaned = dict(changes)
    _clean_fields(bot, cleaned)
    return cleaned


def _clean_fields(bot: Bot, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed.for_field(sorted(unknown)[0], "This field cannot be changed here.")
    if "name" in changes and not str(changes["name"]).strip():
        raise ValidationFailed.for_field("name", "A bot needs a name.")
    if "region" in changes:
        if not isinstance(changes["region"], str) or region_named(changes["region"]) is None:
            raise ValidationFailed.for_field("region", f"Unknown region {changes['region']!r}.")
        if bot.pk and changes["region"] != bot.region:
            if bot.launched_at:
                raise Conflict.for_field(
                    "region", "The region of a launched bot cannot change.", code="region_locked"
                )
            # Its rows live in its region's deployment: changing it is moving the bot there.
            raise Conflict.for_field(
                "region",
                "A draft changes region by moving to that region's deployment "
                "(POST /api/v1/bots/<id>/move/, or Move on its page).",
                code="region_move",
            )
        if not bot.pk and changes["region"] != settings.CHATTONIC_REGION:
            # A bot is created in the deployment of its region, never here for another.
            refused = wrong_region(region_named(changes["region"]))
            refused.fields = {"region": [refused.message]}
            raise refused
    if "allowed_origins" in changes:
        try:
            changes["allowed_origins"] = origins_normalize(changes["allowed_origins"])
        except ValueError as exc:
            raise ValidationFailed.for_field("allowed_origins", str(exc)) from None
    if "time_zone" in changes and changes["time_zone"] not in time_zones():
        raise ValidationFailed.for_field("time_zone", "Unknown time zone.")
    if "business_hours" in changes:
        try:
            changes["business_hours"] = business_hours_normalize(changes["business_hours"])
        except ValueError as exc:
            raise ValidationFailed.for_field("business_hours", str(exc)) from None
    if "default_language" in changes and changes["default_language"] not in LANGUAGE_CODES:
        raise ValidationFailed.for_field("default_language", "Unknown language.")
    for field in TEMPLATED_FIELDS:
        if field in changes:
            if not isinstance(changes[field], str):
                raise ValidationFailed.for_field(field, "A text is needed.")
            if problem := template_problem(changes[field]):
                raise ValidationFailed.for_field(field, f"The text {problem}.")
    if "fallback_limit" in changes:
        limit = changes["fallback_limit"]
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 0 <= limit <= MAX_FALLBACK_LIMIT
        ):
            raise ValidationFailed.for_field(
                "fallback_limit",
                f"A whole number from 0 to {MAX_FALLBACK_LIMIT}, or empty (never).",
            )
    if "intent_threshold" in changes:
        threshold = changes["intent_threshold"]
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 <= threshold <= 1
        ):
            raise ValidationFailed.for_field("intent_threshold", "A number from 0 to 1.")
    if "theme_color" in changes:
        color = str(changes["theme_color"])
        if not (
            len(color) == 7
            and color[0] == "#"
            and all(c in "0123456789abcdefABCDEF" for c in color[1:])
        ):
            raise ValidationFailed.for_field("theme_color", "A colour such as #2563eb.")


@transaction.atomic
def bot_create(
    *,
    tenant: Tenant,
    name: str,
    definition: dict | None = None,
    template: str | None = None,
    **fields: Any,
) -> Bot:
    """Create a draft bot (its region may still change until it is launched), with a flow of
    its own, a template's (``bots.gallery``: its flow and the settings it needs) or the
    starter flow."""
    bot = Bot(tenant=tenant)
    if template is not None:
        chosen = flow_template(template)
        if chosen is None:
            raise ValidationFailed.for_field("template", f"There is no template {template!r}.")
        if definition is not None:
            raise ValidationFailed.for_field(
                "template", "Give a template or a definition, not both."
            )
        definition = chosen.definition
        fields = {**chosen.bot_fields, **fields}
    changes = {"name": name, **fields}
    _clean_fields(bot, changes)
    for key, value in changes.items():
        setattr(bot, key, value.strip() if key == "name" else value)
    if Bot.objects.for_tenant(tenant).filter(name=bot.name).exists():
        raise Conflict.for_field("name", "A bot of this name exists.")
    if definition is not None:
        _ensure_valid_definition(definition)
        bot.draft_definition = definition
    bot.save()
    return bot


@transaction.atomic
def bot_update(*, bot: Bot, **changes: Any) -> Bot:
    """Change a bot's settings; a launched bot's region is refused (409)."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    _clean_fields(bot, changes)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
        taken = (
            Bot.objects.for_tenant(bot.tenant_id).filter(name=changes["name"]).exclude(pk=bot.pk)
        )
        if taken.exists():
            raise Conflict.for_field("name", "A bot of this name exists.")
    for key, value in changes.items():
        setattr(bot, key, value)
    bot.save()
    return bot


def _ensure_valid_definition(definition: Any) -> None:
    if not isinstance(definition, dict):
        raise ValidationFailed.for_field("definition", "A definition is a JSON object.")
    fields = definition_errors_as_fields(definition)
    if fields:
        first = next(iter(fields))
        raise ValidationFailed(
            f"The definition is invalid: {first}: {fields[first][0]}", fields=fields
        )


@transaction.atomic
def draft_update(*, bot: Bot, definition: dict, based_on: datetime | None = None) -> Bot:
    """Replace the bot's draft with a valid definition; published versions are untouched.
    With ``based_on`` (the ``draft_updated_at`` the editor loaded), a draft saved since by
    someone else is refused (409 ``draft_changed``) instead of overwritten."""
    _ensure_valid_definition(definition)
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if based_on is not None and bot.draft_updated_at != based_on:
        raise Conflict(
            "The draft was changed elsewhere (another tab or person) since you opened it: "
            "reload to see it; your change was not saved.",
            code="draft_changed",
        )
    bot.draft_definition = definition
    bot.draft_updated_at = timezone.now()
    bot.save(update_fields=["draft_definition", "draft_updated_at"])
    return bot


def _next_number(bot: Bot) -> int:
    return (
        BotVersion.objects.for_tenant(bot.tenant_id).filter(bot=bot).aggregate(n=Max("number"))["n"]
        or 0
    ) + 1


def _publish(bot: Bot, definition: dict, *, note: str, published_by) -> BotVersion:
    runnable = definition_with_settings(bot, definition)
    # The draft is valid, and so are the settings as each door cleans them; this refuses a
    # bot whose stored settings today's rules would not take.
    fields = _errors_as_fields(validate_definition(runnable))
    if fields:
        first = next(iter(fields))
        raise ValidationFailed(
            f"The bot's settings are invalid: {first}: {fields[first][0]}", fields=fields
        )
    version = BotVersion.objects.create(
        tenant_id=bot.tenant_id,
        bot=bot,
        number=_next_number(bot),
        definition=runnable,
        nlu_model={},
        training=BotVersion.Training.TRAINING,
        note=note,
        published_by=published_by,
    )
    transaction.on_commit(lambda: _queue_training(version.pk))
    return version


def _queue_training(version_id: int) -> None:
    """After the publish commits: the worker's turn to train the version, unless the caller
    trained it already, in the same transaction (`demo_load`, which runs before any broker).
    A broker that does not take the task (down, unreachable) must not leave the version
    training for ever: this process trains it in a thread of its own instead, and
    `bot_versions_train_stuck` (beat) queues again any version still training after that."""
    untrained = BotVersion.objects.filter(pk=version_id, training=BotVersion.Training.TRAINING)
    if not untrained.exists():
        return
    try:
        tasks.bot_version_train.delay(version_id)
    except Exception:  # kombu's OperationalError, a socket's error, a time-out: any of them
        logger.warning(
            "bot version %s: the broker did not take its training; training it here",
            version_id,
            exc_info=True,
        )
        thread = threading.Thread(
            target=_train_in_thread, args=(version_id,), name=f"train-{version_id}", daemon=True
        )
        thread.start()


def _train_in_thread(version_id: int) -> None:
    from django.db import connection

    try:
        bot_version_train(version_id=version_id)
    except Exception:
        logger.exception("bot version %s: training in the web process failed", version_id)
    finally:
        connection.close()  # this thread's own connection


# A version still training this long after it was published lost its task (a broker that was
# down, a process that died while training in a thread): beat queues it again.
STUCK_TRAINING_SECONDS = 120


def bot_versions_train_stuck(*, older_than_seconds: int = STUCK_TRAINING_SECONDS) -> list[int]:
    """Queue the training of every version still training since longer than
    ``older_than_seconds`` (training twice is harmless); the ids queued."""
    since = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = list(
        BotVersion.objects.filter(
            training=BotVersion.Training.TRAINING, published_at__lt=since
        ).values_list("pk", flat=True)[:100]
    )
    for version_id in stuck:
        tasks.bot_version_train.delay(version_id)
    return stuck


def bot_version_train(*, version_id: int) -> BotVersion | None:
    """Train a published version's intent matcher, outside any transaction (seconds for a big
    bot), then store it and make the version live if no newer one is. Safe to run twice;
    None if the version is gone."""
    version = BotVersion.objects.filter(pk=version_id).first()
    if version is None or version.training == BotVersion.Training.READY:
        return version
    try:
        model = IntentMatcher.from_definition(version.definition).to_dict()
    except Exception:
        logger.exception("bot version %s: training failed", version_id)
        BotVersion.objects.filter(pk=version_id).update(training=BotVersion.Training.FAILED)
        raise
    with transaction.atomic():
        bot = Bot.objects.select_for_update().filter(pk=version.bot_id).first()
        version = BotVersion.objects.filter(pk=version_id).first()
        if bot is None or version is None:
            return None
        version.nlu_model = model
        version.training = BotVersion.Training.READY
        version.save(update_fields=["nlu_model", "training"])
        live = bot.published_version
        if live is None or live.number < version.number:
            bot.published_version = version
            bot.save(update_fields=["published_version"])
    return version


@transaction.atomic
def bot_publish(*, bot: Bot, note: str = "", published_by=None) -> BotVersion:
    """Snapshot the draft as a new immutable version; it goes live once the worker has trained
    its intent matcher (bot_version_train, queued when this commits)."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    _ensure_valid_definition(bot.draft_definition)
    return _publish(bot, bot.draft_definition, note=note, published_by=published_by)


@transaction.atomic
def bot_rollback(*, bot: Bot, version: BotVersion, published_by=None) -> BotVersion:
    """Publish an earlier version again, as a new version: its flow becomes the draft and
    its settings (texts, thresholds, language) the bot's. A version that today's rules refuse
    (a pattern RE2 cannot run) is refused like a draft."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if version.bot_id != bot.pk:
        raise ValidationFailed.for_field("version", "This version belongs to another bot.")
    definition = {k: v for k, v in version.definition.items() if k != "settings"}
    _ensure_valid_definition(definition)
    stored = version.definition.get("settings") or {}
    restored = {
        field: stored.get(key, _ENGINE_DEFAULTS[key]) for key, field in FLOW_SETTINGS.items()
    }
    _clean_fields(bot, restored)
    for field, value in restored.items():
        setattr(bot, field, value)
    bot.draft_definition = definition
    bot.draft_updated_at = timezone.now()
    bot.save(update_fields=["draft_definition", "draft_updated_at", *restored])
    return _publish(
        bot, definition, note=f"Rollback to version {version.number}", published_by=published_by
    )


@transaction.atomic
def bot_launch(*, bot: Bot) -> Bot:
    """Put a published bot live on its doors; from now on its region is fixed."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if bot.published_version_id is None:
        training = BotVersion.objects.for_tenant(bot.tenant_id).filter(
            bot=bot, training=BotVersion.Training.TRAINING
        )
        if training.exists():
            # Published a moment ago: its version goes live once its matcher is trained. The
            # owner had just pressed "Save and publish" and read "Publish the bot first".
            raise Conflict(
                "The bot's first version is still being prepared (its understanding is "
                "trained, a few seconds): launch it again in a moment.",
                code="publishing",
            )
        raise Conflict("Publish the bot before launching it.", code="not_published")
    bot.status = Bot.Status.LAUNCHED
    bot.launched_at = bot.launched_at or timezone.now()
    bot.save(update_fields=["status", "launched_at"])
    return bot


@transaction.atomic
def bot_pause(*, bot: Bot) -> Bot:
    """Stop a launched bot from answering (its widget says so); it can launch again."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if bot.status != Bot.Status.LAUNCHED:
        raise Conflict("Only a launched bot can be paused.", code="not_launched")
    bot.status = Bot.Status.PAUSED
    bot.save(update_fields=["status"])
    return bot


def _bot_export(bot: Bot) -> dict[str, Any]:
    """A draft as it moves: its settings, draft and published versions, nothing else."""
    versions = BotVersion.objects.for_tenant(bot.tenant_id).filter(bot=bot).order_by("number")
    return {
        "bot": {
            **{field: getattr(bot, field) for field in EDITABLE_FIELDS if field != "region"},
            "definition": bot.draft_definition,
            "published_version": bot.published_version.number if bot.published_version else None,
        },
        "versions": [
            {
                "number": v.number,
                "definition": v.definition,
                "nlu_model": v.nlu_model,
                "note": v.note,
                "published_at": v.published_at.isoformat(),
            }
            for v in versions
        ],
    }


@transaction.atomic
def bot_move(*, bot: Bot, region: str) -> dict[str, Any]:
    """Move a draft to another region's deployment: its settings, draft and versions are
    created there (with its tenant's identity rows, over the regions' signed exchange) and
    the bot is deleted here, with what hung on it (its sandbox chats, its channels' settings).
    A launched bot keeps its region (409). Returns the new bot's region, id and API URL."""
    target = region_named(region) if isinstance(region, str) else None
    if target is None:
        raise ValidationFailed.for_field("region", f"Unknown region {region!r}.")
    bot = Bot.objects.select_for_update().get(pk=bot.pk)  # alone: no outer join to lock
    if bot.launched_at:
        raise Conflict.for_field(
            "region", "The region of a launched bot cannot change.", code="region_locked"
        )
    if target.name == bot.region:
        raise ValidationFailed.for_field("region", f"The bot is in {target.name} already.")
    answer = peer_call(
        target,
        "POST",
        "/regions/bots/",
        {
            "tenant": bot.tenant.slug,
            "identity": identity_export(tenants=[bot.tenant]),
            **_bot_export(bot),
        },
    )
    bot.delete()  # after the other region has it: a refusal there leaves the bot here
    return {
        "region": target.name,
        "id": answer["id"],
        "public_key": answer["public_key"],
        "url": f"{target.url}/api/v1/bots/{answer['id']}/",
    }


@transaction.atomic
def bot_arrive(*, tenant: Tenant, bot: dict[str, Any], versions: list[dict[str, Any]]) -> Bot:
    """Create here a draft moved from another region (``bot_move`` there): its settings and
    draft checked as any new bot's, its published versions as they were. A new widget key of
    this region; nothing else comes with it."""
    fields = {k: bot[k] for k in EDITABLE_FIELDS if k in bot and k not in ("name", "region")}
    created = bot_create(
        tenant=tenant, name=str(bot.get("name", "")), definition=bot.get("definition"), **fields
    )
    live = None
    for version in sorted(versions, key=lambda v: v["number"]):
        row = BotVersion.objects.create(
            tenant=tenant,
            bot=created,
            number=version["number"],
            definition=version["definition"],
            nlu_model=version.get("nlu_model") or {},
            note=str(version.get("note") or "")[:300],
            published_at=parse_datetime(version.get("published_at") or "") or timezone.now(),
        )
        if row.number == bot.get("published_version"):
            live = row
    if live is not None:
        created.published_version = live
        created.save(update_fields=["published_version"])
    return created


def bot_embedded(*, bot: Bot, origin: str) -> None:
    """Record the bot's first web chat visit from a page of an allowed origin (once: later
    visits change nothing). Not a save: an open socket's copy of the bot stays current."""
    if bot.embedded_at is not None:
        return
    now = timezone.now()
    origin = origin.rstrip("/").lower()[:200]
    if Bot.objects.filter(pk=bot.pk, embedded_at__isnull=True).update(
        embedded_at=now, embedded_origin=origin
    ):
        bot.embedded_at, bot.embedded_origin = now, origin


# --- Unmatched phrases -----------------------------------------------------------------------

# A text longer than this is no training phrase (a story, a pasted page): not kept.
MAX_UNMATCHED_LENGTH = 200
# Personal data has no place in training phrases: a text with an email address or a long
# number (a phone, an order, a card) is not kept.
_PERSONAL = re.compile(r"\S@\S|\d[\d\s().-]{5,}\d")


def unmatched_phrase_record(
    *, tenant_id: int, bot_id: int, text: str, language: str = ""
) -> UnmatchedPhrase | None:
    """Count a visitor's text that the bot's published version did not understand (its
    fallback answered it): a new row, or one more time for the same text folded. None for
    a text too long, empty, or with personal data in it. The caller leaves out the sandbox."""
    text = " ".join(str(text or "").split())
    key = fold(text)[:MAX_UNMATCHED_LENGTH]
    if not key or len(text) > MAX_UNMATCHED_LENGTH or _PERSONAL.search(text):
        return None
    language = language if language in LANGUAGE_CODES else ""
    now = timezone.now()
    rows = UnmatchedPhrase.objects.for_tenant(tenant_id).filter(bot_id=bot_id, key=key)
    if rows.update(count=F("count") + 1, last_seen=now):
        return rows.first()
    try:
        with transaction.atomic():
            return UnmatchedPhrase.objects.create(
                tenant_id=tenant_id,
                bot_id=bot_id,
                text=text,
                key=key,
                language=language,
                first_seen=now,
                last_seen=now,
            )
    except IntegrityError:  # the same text, recorded meanwhile by another process
        rows.update(count=F("count") + 1, last_seen=now)
        return rows.first()


@transaction.atomic
def unmatched_phrase_add_to_intent(*, phrase: UnmatchedPhrase, intent: str) -> Bot:
    """Append the phrase to the training phrases of one of the draft's intents (the owner
    publishes to make it count) and mark it added. An intent the draft does not have is
    refused (400 naming ``intent``)."""
    bot = Bot.objects.select_for_update().get(pk=phrase.bot_id, tenant_id=phrase.tenant_id)
    definition = copy.deepcopy(bot.draft_definition)
    chosen = next((i for i in definition.get("intents") or [] if i.get("name") == intent), None)
    if chosen is None:
        raise ValidationFailed.for_field("intent", f"The draft has no intent {intent!r}.")
    phrases = chosen.setdefault("phrases", [])
    if fold(phrase.text) not in {fold(p) for p in phrases}:
        phrases.append(phrase.text)
        bot = draft_update(bot=bot, definition=definition)
    UnmatchedPhrase.objects.filter(pk=phrase.pk).update(
        status=UnmatchedPhrase.Status.ADDED, intent=intent
    )
    return bot


def unmatched_phrase_dismiss(*, phrase: UnmatchedPhrase) -> None:
    """Set the phrase aside: it leaves the list of new ones, and stays aside if typed again."""
    UnmatchedPhrase.objects.filter(pk=phrase.pk).update(status=UnmatchedPhrase.Status.DISMISSED)
