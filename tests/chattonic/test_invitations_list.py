"""Team → Invitations lists the pending invitations and says so; who accepted is a staff
member, listed under Staff members with the day they joined."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from chattonic.tenancy import services
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db

INVITATIONS = "/dashboard/tenancy/invitation/"
STAFF = "/dashboard/tenancy/membership/"


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _rows(client, url: str) -> list[str]:
    body = client.get(url).content.decode()
    tbody = body[body.index("<tbody>") : body.index("</tbody>")] if "<tbody>" in body else ""
    return [_text(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", tbody, re.S)]


@time_machine.travel("2026-03-02 10:00 +0000", tick=False)
def test_the_list_says_it_holds_the_pending_and_where_who_accepted_went(owner_client, tenant):
    """An accepted invitation left the list without a word: the page now says it lists the
    pending ones, and the person who accepted is under Staff members, "Joined" that day."""
    InvitationFactory(tenant=tenant, email="late@example.com", expires_at=timezone.now())
    waiting = InvitationFactory(
        tenant=tenant, email="soon@example.com", expires_at=timezone.now() + timedelta(days=7)
    )
    accepted = InvitationFactory(tenant=tenant, email="nina@example.com", role="admin")

    body = owner_client.get(INVITATIONS).content.decode()
    intro = _text(re.search(r'<p class="ct-list-intro">(.*?)</p>', body, re.S).group(1))
    assert "still pending" in intro and "Staff members" in intro
    assert f'href="{STAFF}"' in body
    rows = _rows(owner_client, INVITATIONS)
    assert any("soon@example.com" in r and "Pending until March 9, 2026" in r for r in rows)
    assert any("late@example.com" in r and "Expired on March 2, 2026" in r for r in rows)

    services.invitation_accept(invitation=accepted, first_name="Nina", password="a-Long-pass-42")
    rows = _rows(owner_client, INVITATIONS)
    assert not any("nina@example.com" in r for r in rows)
    assert any(waiting.email in r for r in rows)
    (nina,) = [r for r in _rows(owner_client, STAFF) if "nina@example.com" in r]
    assert "Admin" in nina and "March 2, 2026" in nina
    assert "Joined" in _text(owner_client.get(STAFF).content.decode())
