"""The dashboard's pages of the models that moved out of `conversations` (contacts, leads,
lead webhooks, the privacy audit, channels, deliveries; the statistics) answer at their former
addresses too: a bookmark, or a link in an e-mail sent before the move, leads to the same page
at its new address, with its query (a list's filters)."""

from __future__ import annotations

import pytest

from tests.factories import ContactFactory, MembershipFactory

pytestmark = pytest.mark.django_db

MOVED = [
    ("/dashboard/conversations/contact/", "/dashboard/contacts/contact/"),
    (
        "/dashboard/conversations/lead/?status__exact=new",
        "/dashboard/leads/lead/?status__exact=new",
    ),
    ("/dashboard/conversations/leadwebhook/add/", "/dashboard/leads/leadwebhook/add/"),
    ("/dashboard/conversations/privacyaudit/", "/dashboard/privacy/privacyaudit/"),
    ("/dashboard/conversations/channel/add/", "/dashboard/messaging/channel/add/"),
    ("/dashboard/conversations/deliveryattempt/", "/dashboard/messaging/deliveryattempt/"),
    (
        "/dashboard/conversations/conversation/stats/?start=2030-03-01&end=2030-03-09",
        "/dashboard/stats/dailystat/?start=2030-03-01&end=2030-03-09",
    ),
]


@pytest.mark.parametrize(("old", "new"), MOVED)
def test_a_former_address_leads_to_the_page_at_its_new_one(client, tenant, old, new):
    client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
    response = client.get(old)
    assert response.status_code == 301
    assert response["Location"] == new
    assert client.get(new).status_code == 200


def test_an_objects_page_and_a_signed_out_visit(client, tenant):
    contact = ContactFactory(tenant=tenant, name="Zoe Visitor")
    old = f"/dashboard/conversations/contact/{contact.pk}/change/"
    new = f"/dashboard/contacts/contact/{contact.pk}/change/"
    # Signed out: the sign-in page, then back to the new address.
    response = client.get(old, follow=True)
    assert response.redirect_chain[0] == (new, 301)
    assert response.redirect_chain[-1][0] == f"/dashboard/login/?next={new}"
    client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
    page = client.get(old, follow=True)
    assert page.status_code == 200 and "Zoe Visitor" in page.content.decode()
    # What stayed in conversations stays where it was.
    assert client.get("/dashboard/conversations/conversation/").status_code == 200


def test_an_action_sent_to_a_former_address_is_sent_again_to_the_new_one(client, tenant):
    """A list's action posted from a page opened before the move: 308, which browsers follow
    with the same POST (a 301 would drop the form)."""
    client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
    response = client.post("/dashboard/conversations/contact/", {"action": "export_contact"})
    assert response.status_code == 308
    assert response["Location"] == "/dashboard/contacts/contact/"
