"""Writes for bots: create and edit, the draft, publish, roll back, launch, pause."""

from __future__ import annotations

import copy
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from bots.engine import validate_definition
from bots.models import Bot, BotVersion
from bots.nlu import IntentMatcher
from chattonic.core import inputs
from chattonic.core.errors import Conflict, ValidationFailed
from chattonic.tenancy.models import Tenant

# Bot fields that tenant staff edit directly (not the draft, status or region lock).
EDITABLE_FIELDS = (
    "name",
    "region",
    "allowed_origins",
    "default_language",
    "welcome_text",
    "fallback_text",
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
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def definition_errors_as_fields(definition: dict) -> dict[str, list[str]]:
    """The draft's validation errors keyed by ``definition.<node>.<field>``. A definition
    nested past ``inputs.MAX_DEPTH`` levels, or with a NUL character in a string, is refused
    first, whatever door it came through (nothing downstream walks it then)."""
    try:
        inputs.check_depth(definition, field="definition")
        inputs.nul_free(definition, field="definition")
    except inputs.InputError as exc:
        return exc.fields
    fields: dict[str, list[str]] = {}
    for error in validate_definition(definition):
        key = "definition"
        if error.node:
            key += f".nodes.{error.node}"
        if error.field:
            key += f".{error.field}"
        fields.setdefault(key, []).append(error.message)
    return fields


def definition_with_settings(bot: Bot, definition: dict) -> dict:
    """The definition as the engine runs it: the bot's texts and thresholds inside."""
    runnable = copy.deepcopy(definition)
    runnable["settings"] = {
        **runnable.get("settings", {}),
        "welcome_text": bot.welcome_text,
        "fallback_text": bot.fallback_text,
        "fallback_limit": bot.fallback_limit,
        "intent_threshold": bot.intent_threshold,
        "language": bot.default_language,
    }
    return runnable


def _clean_fields(bot: Bot, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed.for_field(sorted(unknown)[0], "This field cannot be changed here.")
    if "name" in changes and not str(changes["name"]).strip():
        raise ValidationFailed.for_field("name", "A bot needs a name.")
    if "region" in changes:
        if changes["region"] not in dict(settings.REGION_CHOICES):
            raise ValidationFailed.for_field("region", f"Unknown region {changes['region']!r}.")
        if bot.pk and bot.launched_at and changes["region"] != bot.region:
            raise Conflict.for_field(
                "region", "The region of a launched bot cannot change.", code="region_locked"
            )
    if "allowed_origins" in changes:
        origins = changes["allowed_origins"]
        if isinstance(origins, list) and all(isinstance(o, str) for o in origins):
            origins = [o.strip().rstrip("/").lower() for o in origins]
        if not isinstance(origins, list) or not all(
            isinstance(o, str)
            and o.startswith(("http://", "https://"))
            and o.count("/") == 2
            and len(o) > len("https://")
            for o in origins
        ):
            raise ValidationFailed.for_field(
                "allowed_origins",
                'A list of origins such as "https://shop.example.com" (no path).',
            )
        changes["allowed_origins"] = origins
    if "time_zone" in changes:
        try:
            ZoneInfo(changes["time_zone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationFailed.for_field("time_zone", "Unknown time zone.") from None
    if "business_hours" in changes:
        _clean_business_hours(changes["business_hours"])
    if "intent_threshold" in changes and not 0 <= float(changes["intent_threshold"]) <= 1:
        raise ValidationFailed.for_field("intent_threshold", "Between 0 and 1.")
    if "theme_color" in changes:
        color = str(changes["theme_color"])
        if not (
            len(color) == 7
            and color[0] == "#"
            and all(c in "0123456789abcdefABCDEF" for c in color[1:])
        ):
            raise ValidationFailed.for_field("theme_color", "A colour such as #2563eb.")


def _clean_business_hours(hours: Any) -> None:
    message = 'Per weekday (mon..sun) a list of ["HH:MM", "HH:MM"] ranges.'
    if not isinstance(hours, dict) or set(hours) - set(WEEKDAYS):
        raise ValidationFailed.for_field("business_hours", message)
    for ranges in hours.values():
        if not isinstance(ranges, list):
            raise ValidationFailed.for_field("business_hours", message)
        for pair in ranges:
            if not (isinstance(pair, list) and len(pair) == 2 and all(_is_hhmm(t) for t in pair)):
                raise ValidationFailed.for_field("business_hours", message)
            if pair[0] >= pair[1]:
                raise ValidationFailed.for_field(
                    "business_hours", "A range must end after it starts."
                )


def _is_hhmm(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return False
    hours, minutes = value[:2], value[3:]
    return hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60


@transaction.atomic
def bot_create(*, tenant: Tenant, name: str, definition: dict | None = None, **fields: Any) -> Bot:
    """Create a draft bot (its region may still change until it is launched)."""
    bot = Bot(tenant=tenant)
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
def draft_update(*, bot: Bot, definition: dict) -> Bot:
    """Replace the bot's draft with a valid definition; published versions are untouched."""
    _ensure_valid_definition(definition)
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
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
    matcher = IntentMatcher.train(runnable.get("intents", []), bot.default_language)
    version = BotVersion.objects.create(
        tenant_id=bot.tenant_id,
        bot=bot,
        number=_next_number(bot),
        definition=runnable,
        nlu_model=matcher.to_dict(),
        note=note,
        published_by=published_by,
    )
    bot.published_version = version
    bot.save(update_fields=["published_version"])
    return version


@transaction.atomic
def bot_publish(*, bot: Bot, note: str = "", published_by=None) -> BotVersion:
    """Snapshot the draft as a new immutable version (intents trained) and make it live."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    _ensure_valid_definition(bot.draft_definition)
    return _publish(bot, bot.draft_definition, note=note, published_by=published_by)


@transaction.atomic
def bot_rollback(*, bot: Bot, version: BotVersion, published_by=None) -> BotVersion:
    """Publish an earlier version's definition again, as a new version; the draft follows.
    A version that today's rules refuse (a pattern RE2 cannot run) is refused like a draft."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if version.bot_id != bot.pk:
        raise ValidationFailed.for_field("version", "This version belongs to another bot.")
    definition = {k: v for k, v in version.definition.items() if k != "settings"}
    _ensure_valid_definition(definition)
    bot.draft_definition = definition
    bot.draft_updated_at = timezone.now()
    bot.save(update_fields=["draft_definition", "draft_updated_at"])
    return _publish(
        bot, definition, note=f"Rollback to version {version.number}", published_by=published_by
    )


@transaction.atomic
def bot_launch(*, bot: Bot) -> Bot:
    """Put a published bot live on its doors; from now on its region is fixed."""
    bot = Bot.objects.select_for_update().get(pk=bot.pk)
    if bot.published_version_id is None:
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
