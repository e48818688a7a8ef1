"""Bots: their settings, their editable draft and their immutable published versions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from bots.engine.types import DEFAULT_INTENT_THRESHOLD
from chattonic.regions import region_choices, this_region, token_new
from chattonic.tenancy.models import TenantOwned


def new_public_key() -> str:
    """A widget key of this region: ``<region code>.<random>`` (chattonic.regions)."""
    return token_new(18)


def starter_definition() -> dict:
    """A new bot's flow: after the welcome text it asks what the visitor needs, and ends."""
    return {
        "format": 1,
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "question",
                "text": "Tell me what you need, and we will get back to you.",
                "variable": "request",
                "next": "thanks",
            },
            "thanks": {"type": "end", "text": "Thank you! We will get back to you soon."},
        },
        "intents": [],
    }


empty_definition = starter_definition  # the name migration 0001 refers to


def default_business_hours() -> dict:
    weekday = [["09:00", "18:00"]]
    return {"mon": weekday, "tue": weekday, "wed": weekday, "thu": weekday, "fri": weekday}


class Bot(TenantOwned):
    """A chatbot of a tenant. Its region is fixed once it is launched."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LAUNCHED = "launched", "Launched"
        PAUSED = "paused", "Paused"

    class Language(models.TextChoices):
        EN = "en", "English"
        ES = "es", "Spanish"
        PT = "pt", "Portuguese"

    name = models.CharField(max_length=120)
    # A bot's row exists only in its region's deployment: this deployment's region. The
    # region it names is kept (and checked at the doors) as a guard.
    region = models.CharField(
        max_length=40,
        choices=region_choices,
        default=this_region,
        help_text="Where its conversations and data live. Fixed once the bot is launched.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The widget's key: public by design (it sits in the tenant's page), looked up before the
    # tenant is known, so unique on its own like an API key's prefix.
    public_key = models.CharField(
        max_length=40, unique=True, default=new_public_key, editable=False
    )
    # Origins (scheme://host[:port]) whose pages may open the widget, e.g.
    # ["https://shop.example.com"]; the platform's own pages always may.
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            "The sites whose pages may show this bot's chat: scheme, host and port, no path "
            "(e.g. https://shop.example.com)."
        ),
    )
    # The bot's conversation settings: the one source of the texts and thresholds that each
    # published version carries in its definition's "settings" (bots.services.FLOW_SETTINGS).
    default_language = models.CharField(
        "language", max_length=2, choices=Language.choices, default="en"
    )
    welcome_text = models.CharField(max_length=500, default="Hi! How can I help you today?")
    fallback_text = models.CharField(
        max_length=500,
        default="Sorry, I did not understand that. Could you rephrase?",
        help_text="Said when the bot does not understand a message.",
    )
    handoff_text = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Said when the bot hands the chat to a person and the flow gives no text of "
        "its own. Empty: “I'm connecting you with a person from our team.” in the bot's language.",
    )
    fallback_limit = models.PositiveSmallIntegerField(
        "misunderstandings before a handoff",
        null=True,
        blank=True,
        default=3,
        help_text="After this many in a row, the next one hands the chat to a person "
        "(0: at the first). Empty: never.",
    )
    intent_threshold = models.FloatField(
        "intent confidence threshold",
        # The engine's default, chosen on the shipped hold-out set (docs/flows.md).
        default=DEFAULT_INTENT_THRESHOLD,
        help_text="From 0 to 1: a message understood with less confidence counts as not "
        "understood.",
    )
    # {"mon": [["09:00", "18:00"], ...], ...}: a weekday without ranges is closed; "24:00"
    # ends a range at midnight.
    business_hours = models.JSONField(default=default_business_hours, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    # The web chat widget's look and options.
    title = models.CharField(max_length=80, blank=True, help_text="The widget's title.")
    theme_color = models.CharField("theme colour", max_length=7, default="#2563eb")
    prechat_form = models.BooleanField(
        default=False, help_text="Ask the visitor's name, email and consent before the chat."
    )
    away_message = models.CharField(
        max_length=500,
        default=(
            "Our team is not available right now. Leave your details and we will get back to you."
        ),
    )
    ticket_after_hours = models.BooleanField(
        default=False,
        help_text=(
            "When nobody can take a handoff, the visitor's details also open a support ticket."
        ),
    )
    draft_definition = models.JSONField(default=starter_definition)
    draft_updated_at = models.DateTimeField(default=timezone.now)
    published_version = models.ForeignKey(
        "bots.BotVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    # The first web chat visit from a page of one of the allowed origins (not the platform's
    # own demo and test pages): the sign that the widget is embedded on the tenant's site.
    embedded_at = models.DateTimeField(null=True, blank=True, editable=False)
    embedded_origin = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Every save stamps it, even a save of a few fields: an open web chat socket compares it
    # with its copy of the bot and reads the bot again when it changed.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="bot_tenant_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields"):  # an empty list saves nothing: leave it so
            kwargs["update_fields"] = {*kwargs["update_fields"], "updated_at"}
        super().save(*args, **kwargs)

    @property
    def display_title(self) -> str:
        return self.title or self.name

    def clean(self) -> None:
        """Model validation: a launched bot keeps its region (its data lives there)."""
        super().clean()
        if self.pk and self.launched_at:
            stored = Bot.objects.filter(pk=self.pk).values_list("region", flat=True).first()
            if stored is not None and stored != self.region:
                raise ValidationError({"region": "The region of a launched bot cannot change."})


# The languages' codes, as a set: ``Bot.Language.values`` builds a new list on each use (the
# message paths ask once per conversation they open).
LANGUAGE_CODES = frozenset(Bot.Language.values)


class BotVersion(TenantOwned):
    """An immutable snapshot of a bot's definition, with its trained intent model."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    nlu_model = models.JSONField(default=dict, blank=True)

    class Training(models.TextChoices):
        TRAINING = "training", "Training…"
        READY = "ready", "Ready"
        FAILED = "failed", "Training failed"

    # Publishing stores the version at once; the worker trains its intent matcher, and the
    # version goes live when it is ready (bots.services.bot_version_train).
    training = models.CharField(max_length=10, choices=Training.choices, default=Training.READY)
    note = models.CharField(max_length=300, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["bot", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot", "number"], name="botversion_tenant_bot_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot} v{self.number}"


class UnmatchedPhrase(TenantOwned):
    """A visitor's text the bot did not understand (its fallback answered it), kept for the
    bot's owner to add to an intent or dismiss. The same text typed again (case, accents and
    punctuation aside) counts once more; sandbox chats record none."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        ADDED = "added", "Added to an intent"
        DISMISSED = "dismissed", "Dismissed"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="unmatched_phrases")
    text = models.CharField(max_length=200)
    key = models.CharField(max_length=200)  # the folded text (bots.engine.text.fold)
    language = models.CharField(max_length=2, choices=Bot.Language.choices, blank=True)
    count = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    intent = models.CharField(max_length=100, blank=True)  # the intent it was added to
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bot", "key"], name="unmatchedphrase_tenant_bot_key_unique"
            ),
        ]
        indexes = [models.Index(fields=["bot", "status", "-last_seen"])]

    def __str__(self) -> str:
        return self.text
