"""A contact's attributes and a lead's fields in the dashboard: a row of inputs per name and
value (no JSON box), saved through the services; a value whose text is unchanged keeps its
type; a value without a name, or a name twice, is refused beside the rows."""

from __future__ import annotations

import re

import pytest

from contacts.models import Contact
from leads.models import Lead
from tests.factories import ContactFactory, LeadFactory

pytestmark = pytest.mark.django_db


def contact_url(contact) -> str:
    return f"/dashboard/contacts/contact/{contact.pk}/change/"


def rows(html: str, name: str) -> list[tuple[str, str]]:
    keys = re.findall(rf'name="{name}_key"[^>]*value="([^"]*)"', html)
    values = re.findall(rf'name="{name}_value"[^>]*value="([^"]*)"', html)
    return list(zip(keys, values, strict=True))


def post_contact(client, contact, pairs, **extra):
    data = {
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "attributes_key": [key for key, _ in pairs],
        "attributes_value": [value for _, value in pairs],
        "identities-TOTAL_FORMS": "0",
        "identities-INITIAL_FORMS": "0",
        **extra,
    }
    return client.post(contact_url(contact), data)


@pytest.fixture
def contact(tenant):
    return ContactFactory(
        tenant=tenant, attributes={"plan": "gold", "consent": True, "seats": 12, "team": "A"}
    )


def test_the_contact_page_shows_each_attribute_as_a_row(owner_client, contact):
    html = owner_client.get(contact_url(contact)).content.decode()
    assert "<textarea" not in html
    shown = rows(html, "attributes")
    assert shown[-1] == ("", "")  # one empty row to type into
    # In the stored order (PostgreSQL's jsonb keeps its own).
    assert sorted(shown[:-1]) == [
        ("consent", "true"),
        ("plan", "gold"),
        ("seats", "12"),
        ("team", "A"),
    ]
    assert 'aria-label="Name of attribute 1"' in html and "contacts/key_values.js" in html


def test_rows_are_changed_added_and_removed_and_unchanged_values_keep_their_type(
    owner_client, contact
):
    response = post_contact(
        owner_client,
        contact,
        [("plan", "platinum"), ("consent", "true"), ("seats", "12"), ("city", " Lyon "), ("", "")],
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.attributes == {"plan": "platinum", "consent": True, "seats": 12, "city": "Lyon"}


def test_a_changed_number_is_stored_as_typed_text(owner_client, contact):
    post_contact(owner_client, contact, [("seats", "13")])
    contact.refresh_from_db()
    assert contact.attributes == {"seats": "13"}


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        ([("plan", "gold"), ("", "orphan")], "The value &#x27;orphan&#x27; needs a name."),
        ([("plan", "gold"), ("plan", "silver")], "plan: the name is there twice."),
    ],
)
def test_bad_rows_are_refused_beside_them_and_kept_as_typed(owner_client, contact, pairs, problem):
    response = post_contact(owner_client, contact, pairs)
    assert response.status_code == 200
    html = response.content.decode()
    assert problem in html
    assert rows(html, "attributes")[: len(pairs)] == pairs
    contact.refresh_from_db()
    assert contact.attributes["plan"] == "gold" and "team" in contact.attributes


def test_another_tenants_contact_cannot_be_changed(client, contact, other_tenant):
    from tests.factories import MembershipFactory

    client.force_login(MembershipFactory(tenant=other_tenant, role="owner").user)
    assert post_contact(client, contact, [("plan", "stolen")]).status_code == 404
    assert Contact.objects.get(pk=contact.pk).attributes["plan"] == "gold"


def test_a_leads_fields_are_rows_saved_through_the_service(owner_client, tenant):
    lead = LeadFactory(tenant=tenant, fields={"email": "zoe@example.com", "budget": "500"})
    url = f"/dashboard/leads/lead/{lead.pk}/change/"
    html = owner_client.get(url).content.decode()
    assert "<textarea" not in html
    assert sorted(rows(html, "fields")) == [
        ("", ""),
        ("budget", "500"),
        ("email", "zoe@example.com"),
    ]
    response = owner_client.post(
        url,
        {
            "status": "qualified",
            "fields_key": ["email", "budget", "company"],
            "fields_value": ["zoe@example.com", "", "Acme"],
        },
    )
    assert response.status_code == 302
    lead.refresh_from_db()
    assert lead.status == "qualified"
    assert lead.fields == {"email": "zoe@example.com", "company": "Acme"}  # empty: dropped
    assert Lead.objects.count() == 1


def test_a_privacy_audit_says_what_it_covered_in_words(owner_client, tenant):
    from tests.factories import PrivacyAuditFactory

    audit = PrivacyAuditFactory(tenant=tenant, summary={"conversations": 2, "messages": 9})
    page = owner_client.get(f"/dashboard/privacy/privacyaudit/{audit.pk}/change/")
    html = page.content.decode()
    assert "2 conversations, 9 messages" in html and "{&quot;" not in html


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        ([("n" * 101, "x")], "a name has at most 100 characters."),
        ([("note", "v" * 1001)], "note: at most 1000 characters."),
        ([(f"k{i}", "v") for i in range(101)], "At most 100 entries."),
    ],
)
def test_the_limits_are_refused_beside_the_rows(owner_client, contact, pairs, problem):
    response = post_contact(owner_client, contact, pairs)
    assert response.status_code == 200 and problem in response.content.decode()
    contact.refresh_from_db()
    assert contact.attributes["plan"] == "gold"


def test_an_api_keys_scopes_read_as_words(owner_client, tenant):
    from chattonic.tenancy.services import api_key_create

    api_key, _ = api_key_create(tenant=tenant, name="CRM", scopes=["read", "write"])
    page = owner_client.get(f"/dashboard/tenancy/apikey/{api_key.pk}/change/").content.decode()
    assert "Read, Write" in page and "[&quot;read" not in page
    listing = owner_client.get("/dashboard/tenancy/apikey/").content.decode()
    assert "Read, Write" in listing
