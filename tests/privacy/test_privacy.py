"""Privacy: the JSON export, and an erase that leaves no personal data in any table."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models

from agents.models import HandoffEvent
from contacts import services as contacts
from contacts.models import Contact
from conversations.models import Conversation, Message
from privacy import services as privacy
from privacy.models import PrivacyAudit
from stats import services as stats
from tests.conversations.insight import at, conversation_with_messages
from tests.factories import (
    BotFactory,
    ContactFactory,
    ContactIdentityFactory,
    HandoffEventFactory,
    LeadFactory,
    MessageFactory,
    NoteFactory,
    TicketCommentFactory,
    TicketFactory,
)

pytestmark = pytest.mark.django_db
EMAIL = "erin.private@example.com"
PHONE = "+15550100199"
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def rows_mentioning(*needles: str) -> list[str]:
    """Every (model, pk, field) whose text holds one of the needles, in every table."""
    found = []
    for model in apps.get_models():
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not names:
            continue
        for row in model._default_manager.values_list("pk", *names).iterator():
            for name, value in zip(names, row[1:], strict=True):
                text = str(value).lower()
                if any(needle.lower() in text for needle in needles):
                    found.append(f"{model._meta.label} #{row[0]} {name}")
    return found


@pytest.fixture
def erin(tenant):
    """A contact with everything: identities, two conversations (one merged in from a second
    contact), messages quoting her email, a lead, a note, a handoff, a ticket, a log entry."""
    bot = BotFactory(tenant=tenant)
    erin = ContactFactory(tenant=tenant, name="Erin Private", email=EMAIL, phone=PHONE)
    ContactIdentityFactory(tenant=tenant, contact=erin, kind="whatsapp", external_id=PHONE[1:])
    conversation = conversation_with_messages(
        tenant,
        bot=bot,
        contact=erin,
        recipient_id=PHONE[1:],
        created_at=at(10, 9),
        queued_at=at(10, 9, 30),
        first_agent_response_at=at(10, 9, 32),
        resolved_at=at(10, 10),
        status="resolved",
        csat=5,
        engine_state={"variables": {"email": EMAIL}},
    )
    MessageFactory(
        tenant=tenant,
        conversation=conversation,
        text=f"mail me at {EMAIL}",
        created_at=at(10, 9, 5),
    )
    lead = LeadFactory(
        tenant=tenant,
        contact=erin,
        conversation=conversation,
        bot=bot,
        channel_kind="webchat",
        fields={"email": EMAIL, "phone": PHONE},
        created_at=at(10, 9, 6),
    )
    NoteFactory(tenant=tenant, conversation=conversation, text=f"called {PHONE}")
    HandoffEventFactory(tenant=tenant, conversation=conversation, detail=EMAIL)
    ticket = TicketFactory(
        tenant=tenant,
        conversation=conversation,
        lead=lead,
        title=f"After-hours request from {EMAIL}",
        description=f"Email: {EMAIL}\nPhone: {PHONE}",
        reporter_name="Erin Private",
        reporter_email=EMAIL,
    )
    TicketCommentFactory(tenant=tenant, ticket=ticket, body=f"Wrote to {EMAIL.upper()} today")
    # A second contact (another channel) merged into her.
    twin = ContactFactory(tenant=tenant, name="", email="", phone=PHONE)
    conversation_with_messages(tenant, bot=bot, contact=twin, created_at=at(11, 9))
    contacts.contact_merge(target=erin, source=twin)
    LogEntry.objects.log_actions(
        user_id=None if False else _user(tenant).pk,
        queryset=[erin],
        action_flag=CHANGE,
        change_message="Changed email.",
        single_object=True,
    )
    return erin


def _user(tenant):
    from tests.factories import MembershipFactory

    return MembershipFactory(tenant=tenant).user


def test_the_export_holds_everything_and_is_audited(tenant, erin):
    data = privacy.contact_export(contact=erin, door=PrivacyAudit.Door.API)
    assert data["contact"]["email"] == EMAIL
    assert len(data["contact"]["merged_contacts"]) == 1
    assert data["identities"][0]["external_id"] == PHONE[1:]
    assert len(data["conversations"]) == 2
    texts = [m["text"] for c in data["conversations"] for m in c["messages"]]
    assert f"mail me at {EMAIL}" in texts
    assert data["conversations"][0]["notes"][0]["text"] == f"called {PHONE}"
    assert data["leads"][0]["fields"]["phone"] == PHONE
    audit = PrivacyAudit.objects.get()
    assert (audit.action, audit.contact_ref, audit.summary["conversations"]) == (
        "export",
        erin.pk,
        2,
    )


def test_erase_leaves_no_personal_data_in_any_table(tenant, other_tenant, erin):
    theirs = ContactFactory(tenant=other_tenant, email="keep@example.com")
    kept = ContactFactory(tenant=tenant, email="kept@example.com")
    assert rows_mentioning(EMAIL, PHONE[1:])  # the search finds what is there

    audit = privacy.contact_erase(contact=erin, door=PrivacyAudit.Door.DASHBOARD)

    assert rows_mentioning(EMAIL, PHONE[1:], "Erin Private") == []
    assert not Contact.objects.filter(pk=erin.pk).exists()
    assert not Conversation.objects.filter(tenant=tenant).exists()
    assert not Message.objects.filter(tenant=tenant).exists()
    assert not HandoffEvent.objects.filter(tenant=tenant).exists()
    assert not LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Contact), object_id=str(erin.pk)
    ).exists()
    assert Contact.objects.filter(pk__in=[theirs.pk, kept.pk]).count() == 2
    assert (audit.action, audit.contact_ref, audit.door) == ("erase", erin.pk, "dashboard")
    assert audit.summary == {"contacts": 2, "conversations": 2, "messages": 11, "leads": 1}


def test_erase_keeps_the_statistics(tenant, erin):
    start, end = date(2030, 3, 10), date(2030, 3, 11)
    stats.stats_rebuild(tenant_id=tenant.pk, start=start, end=end)
    before = stats.stats_report(tenant=tenant, start=start, end=end)
    privacy.contact_erase(contact=erin, door=PrivacyAudit.Door.API)
    after = stats.stats_report(tenant=tenant, start=start, end=end)
    assert after == before
    assert before["totals"]["conversations"] == 2 and before["totals"]["csat_average"] == 5
    # A later rebuild of those days does not count her twice, nor lose her.
    stats.stats_rebuild(tenant_id=tenant.pk, start=start, end=end)
    assert stats.stats_report(tenant=tenant, start=start, end=end) == before


def test_dashboard_erase_asks_first_then_erases(owner_client, tenant, erin):
    url = "/dashboard/contacts/contact/"
    confirm = owner_client.post(url, {"action": "erase_contacts", "_selected_action": [erin.pk]})
    assert confirm.status_code == 200 and b"Yes, erase them" in confirm.content
    assert Contact.objects.filter(pk=erin.pk).exists()
    done = owner_client.post(
        url, {"action": "erase_contacts", "_selected_action": [erin.pk], "post": "yes"}
    )
    assert done.status_code == 302
    assert not Contact.objects.filter(pk=erin.pk).exists()
    audit = PrivacyAudit.objects.get(action="erase")
    assert audit.actor is not None and audit.door == "dashboard"


def test_dashboard_export_downloads_json(owner_client, tenant, erin):
    response = owner_client.post(
        "/dashboard/contacts/contact/",
        {"action": "export_contact", "_selected_action": [erin.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["contact"]["email"] == EMAIL


def test_the_audits_breadcrumbs_lead_home_not_to_a_page_of_one_link(
    owner_client, admin_client, tenant
):
    """Tenant staff's crumbs go from Home to the list (the sidebar's groups have no page). An
    operator's go through the app's page, but for the privacy app, of one list: no "Privacy"
    crumb to a page that only links to it. An app of several lists (leads: leads and lead
    webhooks) keeps its crumb."""

    def crumbs(client, url):
        body = client.get(url).content.decode()
        div = body[body.index('class="breadcrumbs"') :]
        return re.findall(r'href="([^"]+)"', div[: div.index("</div>")])

    for url in ("/dashboard/privacy/privacyaudit/", "/dashboard/leads/leadwebhook/"):
        assert crumbs(owner_client, url) == ["/dashboard/"]
    assert crumbs(admin_client, "/dashboard/privacy/privacyaudit/") == ["/dashboard/"]
    assert crumbs(admin_client, "/dashboard/leads/leadwebhook/") == [
        "/dashboard/",
        "/dashboard/leads/",
    ]


def test_deleting_a_contact_in_the_dashboard_is_its_erase(owner_client, tenant, erin):
    """Its page's Delete and the list's "Delete selected": recorded, the statistics kept, like
    the erase action, not a plain delete that left no audit and took its numbers along."""
    start, end = date(2030, 3, 1), date(2030, 3, 20)
    stats.stats_rebuild(tenant_id=tenant.pk, start=start, end=end)
    before = stats.stats_report(tenant=tenant, start=start, end=end)
    assert before["totals"]["conversations"] == 2
    page = owner_client.post(f"/dashboard/contacts/contact/{erin.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    assert not Contact.objects.filter(pk=erin.pk).exists()
    audit = PrivacyAudit.objects.get(action="erase", contact_ref=erin.pk)
    assert audit.door == "dashboard" and audit.actor is not None
    stats.stats_rebuild(tenant_id=tenant.pk, start=start, end=end)
    assert stats.stats_report(tenant=tenant, start=start, end=end) == before

    other = ContactFactory(tenant=tenant, name="Otto")
    listed = owner_client.post(
        "/dashboard/contacts/contact/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert listed.status_code == 302
    assert PrivacyAudit.objects.filter(action="erase", contact_ref=other.pk).exists()
