"""Factories for every model, one per model.

The tenant-isolation test (tests/chattonic/test_isolation.py) finds the factory of each
tenant-owned model here; a model without one fails that test until it gets one.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents.models import (
    AgentProfile,
    CannedResponse,
    ConversationSeen,
    HandoffEvent,
    Note,
    Team,
)
from backups.models import BackupRun, RestoreCheck
from bots.models import Bot, BotVersion, UnmatchedPhrase
from chattonic.core.credentials import encrypt_secret
from chattonic.tenancy.models import ApiKey, Invitation, Membership, Tenant
from contacts.models import Contact, ContactIdentity
from conversations.models import ChannelKind, Conversation, Message
from leads.models import Lead, LeadWebhook
from messaging.models import Channel, DeliveryAttempt
from privacy.models import PrivacyAudit
from stats.models import DailyStat
from support.models import SupportHoliday, Ticket, TicketComment, TrelloCard, TrelloOutbox


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ADMIN
    owns_account = True

    @factory.post_generation
    def staff_flag(obj, create, extracted, **kwargs):
        obj.user.is_staff = obj.role in (Membership.Role.OWNER, Membership.Role.ADMIN)
        obj.user.save(update_fields=["is_staff"])


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invited{n}@example.com")
    role = Membership.Role.AGENT
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    prefix = factory.Sequence(lambda n: f"p{n:011d}")
    secret_hash = "0" * 64
    scopes = ["read"]


# --- Backups (platform-level, not tenant-owned) ---------------------------------------------


class BackupRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BackupRun

    trigger = "command"
    status = "succeeded"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    engine = "sqlite"
    database_name = "sqlite:///chattonic.sqlite3"
    file_path = factory.Sequence(lambda n: f"/nonexistent/chattonic-test-{n}.sqlite3")
    size = 1024
    sha256 = "0" * 64


class RestoreCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RestoreCheck

    backup = factory.SubFactory(BackupRunFactory)
    trigger = "schedule"
    status = "passed"
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyFunction(timezone.now)
    details = "row counts: all as the manifest records"


# --- Bots -----------------------------------------------------------------------------------


def simple_definition() -> dict:
    """A small valid flow: a greeting with two quick replies, an email question, the end."""
    from tests.bots.flows import SIMPLE_FLOW

    return copy.deepcopy(SIMPLE_FLOW)


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bot

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Bot {n}")
    draft_definition = factory.LazyFunction(simple_definition)

    class Params:
        live = factory.Trait(
            status=Bot.Status.LAUNCHED,
            launched_at=factory.LazyFunction(timezone.now),
        )


def launched_bot(**kwargs) -> Bot:
    """A bot with a published version, launched."""
    from bots.services import bot_launch, bot_publish

    bot = BotFactory(**kwargs)
    trained(bot_publish(bot=bot))
    return bot_launch(bot=bot)


class BotVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BotVersion

    tenant = factory.SubFactory(TenantFactory)
    bot = factory.SubFactory(BotFactory, tenant=factory.SelfAttribute("..tenant"))
    number = factory.Sequence(lambda n: n + 1)
    definition = factory.LazyFunction(simple_definition)


class UnmatchedPhraseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UnmatchedPhrase

    tenant = factory.SubFactory(TenantFactory)
    bot = factory.SubFactory(BotFactory, tenant=factory.SelfAttribute("..tenant"))
    text = factory.Sequence(lambda n: f"where do penguins live {n}")
    key = factory.LazyAttribute(lambda o: o.text)


# --- Conversations --------------------------------------------------------------------------


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel

    tenant = factory.SubFactory(TenantFactory)
    bot = factory.SubFactory(BotFactory, tenant=factory.SelfAttribute("..tenant"))
    kind = ChannelKind.TELEGRAM
    name = factory.Sequence(lambda n: f"Channel {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Contact {n}")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")


class ContactIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactIdentity

    tenant = factory.SubFactory(TenantFactory)
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    kind = ChannelKind.WEBCHAT
    external_id = factory.Sequence(lambda n: f"{n:032x}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    tenant = factory.SubFactory(TenantFactory)
    bot = factory.SubFactory(BotFactory, tenant=factory.SelfAttribute("..tenant"))
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    channel_kind = ChannelKind.WEBCHAT
    recipient_id = factory.Sequence(lambda n: f"{n:032x}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    tenant = factory.SubFactory(TenantFactory)
    conversation = factory.SubFactory(ConversationFactory, tenant=factory.SelfAttribute("..tenant"))
    direction = Message.Direction.IN
    sender = Message.Sender.CONTACT
    text = factory.Sequence(lambda n: f"message {n}")
    status = Message.Status.RECEIVED


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    tenant = factory.SubFactory(TenantFactory)
    channel = factory.SubFactory(ChannelFactory, tenant=factory.SelfAttribute("..tenant"))
    message = factory.SubFactory(
        MessageFactory,
        tenant=factory.SelfAttribute("..tenant"),
        channel=factory.SelfAttribute("..channel"),
        direction=Message.Direction.OUT,
        sender=Message.Sender.BOT,
        status=Message.Status.SENT,
    )
    number = 1
    outcome = DeliveryAttempt.Outcome.SENT
    status_code = 200


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    tenant = factory.SubFactory(TenantFactory)
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    fields = factory.LazyAttribute(lambda o: {"email": o.contact.email})


class DailyStatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyStat

    tenant = factory.SubFactory(TenantFactory)
    day = factory.LazyFunction(lambda: timezone.now().date())
    channel_kind = ChannelKind.WEBCHAT
    conversations = 3
    messages_in = 7
    messages_out = 9


class PrivacyAuditFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PrivacyAudit

    tenant = factory.SubFactory(TenantFactory)
    action = PrivacyAudit.Action.EXPORT
    contact_ref = factory.Sequence(lambda n: n + 1)
    door = PrivacyAudit.Door.API


class LeadWebhookFactory(factory.django.DjangoModelFactory):
    """``signing_secret`` (not a column) is stored encrypted, as the service stores it."""

    class Meta:
        model = LeadWebhook
        exclude = ("signing_secret",)

    tenant = factory.SubFactory(TenantFactory)
    url = factory.Sequence(lambda n: f"https://crm.example.com/hooks/{n}")
    signing_secret = factory.Sequence(lambda n: f"lead-webhook-secret-{n}")
    signing_secret_encrypted = factory.LazyAttribute(lambda o: encrypt_secret(o.signing_secret))


# --- Agents ---------------------------------------------------------------------------------


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class AgentProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentProfile

    tenant = factory.SubFactory(TenantFactory)
    user = factory.LazyAttribute(
        lambda o: MembershipFactory(tenant=o.tenant, role=Membership.Role.AGENT).user
    )
    presence = AgentProfile.Presence.ONLINE
    last_seen_at = factory.LazyFunction(timezone.now)


class HandoffEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HandoffEvent

    tenant = factory.SubFactory(TenantFactory)
    conversation = factory.SubFactory(ConversationFactory, tenant=factory.SelfAttribute("..tenant"))
    from_status = "bot"
    to_status = "queued"
    reason = HandoffEvent.Reason.VISITOR_REQUEST


class CannedResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedResponse

    tenant = factory.SubFactory(TenantFactory)
    shortcut = factory.Sequence(lambda n: f"reply{n}")
    text = "Thanks for waiting!"


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Note

    tenant = factory.SubFactory(TenantFactory)
    conversation = factory.SubFactory(ConversationFactory, tenant=factory.SelfAttribute("..tenant"))
    text = "A private note"


class ConversationSeenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConversationSeen

    tenant = factory.SubFactory(TenantFactory)
    conversation = factory.SubFactory(ConversationFactory, tenant=factory.SelfAttribute("..tenant"))
    agent = factory.LazyAttribute(
        lambda o: MembershipFactory(tenant=o.tenant, role=Membership.Role.AGENT).user
    )


# --- Support --------------------------------------------------------------------------------


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    tenant = factory.SubFactory(TenantFactory)
    title = factory.Sequence(lambda n: f"Problem {n}")
    description = "The widget does not open."
    source = Ticket.Source.DASHBOARD
    first_response_due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=6))


class TicketCommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketComment

    tenant = factory.SubFactory(TenantFactory)
    ticket = factory.SubFactory(TicketFactory, tenant=factory.SelfAttribute("..tenant"))
    origin = TicketComment.Origin.TENANT
    author_name = "Reporter"
    body = "Any news?"


class TrelloCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrelloCard

    tenant = factory.SubFactory(TenantFactory)
    ticket = factory.SubFactory(TicketFactory, tenant=factory.SelfAttribute("..tenant"))
    card_id = factory.Sequence(lambda n: f"{n:024x}")
    short_url = factory.LazyAttribute(lambda o: f"https://trello.com/c/{o.card_id[-8:]}")


class TrelloOutboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrelloOutbox

    tenant = factory.SubFactory(TenantFactory)
    ticket = factory.SubFactory(TicketFactory, tenant=factory.SelfAttribute("..tenant"))
    kind = TrelloOutbox.Kind.MOVE_CARD


class SupportHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SupportHoliday
        django_get_or_create = ["date"]

    date = factory.Sequence(lambda n: date(2030, 1, 1) + timedelta(days=n))
    name = "Holiday"


def trained(version):
    """A version published in a test, trained and live: the worker trains it after the commit,
    and a test that runs in one transaction never commits."""
    from bots.services import bot_version_train

    return bot_version_train(version_id=version.pk)
