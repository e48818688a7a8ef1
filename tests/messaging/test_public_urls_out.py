"""Every URL the platform prints or sends is on chattonic.core.public_urls' base: the configured
PUBLIC_BASE_URL, else the host the page was asked on, else (no request: a task, an email sent
by a task) the development guess. Channel webhook URLs, Twilio's signed URL, invitation links,
Trello's ticket links."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import RequestFactory

from conversations.models import Message
from messaging.services import webhook_url
from support.trello.sync import callback_url, ticket_link
from tests.factories import TicketFactory
from tests.fakes.channels import hook_path, make_channel, post, signature_headers, text_body

pytestmark = pytest.mark.django_db

GUESS = "http://localhost:8000"


@pytest.fixture
def unconfigured(settings):
    settings.PUBLIC_BASE_URL = settings.PUBLIC_BASE_URL_GUESS = GUESS
    settings.ALLOWED_HOSTS = ["chat.example.net", "testserver", "localhost"]
    return settings


@pytest.fixture
def configured(settings):
    settings.PUBLIC_BASE_URL = "https://chat.example.com"
    settings.PUBLIC_BASE_URL_GUESS = ""
    settings.ALLOWED_HOSTS = ["chat.example.net", "testserver", "localhost"]
    return settings


def asked_on(host: str):
    return RequestFactory().get("/dashboard/", HTTP_HOST=host)


def test_a_channels_webhook_url_names_the_host_the_dashboard_was_asked_on(unconfigured):
    channel = make_channel("telegram")
    path = f"/hooks/telegram/{channel.pk}/"
    assert webhook_url(channel, asked_on("chat.example.net:8443")) == (
        f"http://chat.example.net:8443{path}"
    )
    assert webhook_url(channel) == GUESS + path  # a task: the guess


def test_a_configured_public_url_wins_over_the_host(configured):
    channel = make_channel("whatsapp")
    expected = f"https://chat.example.com/hooks/whatsapp/{channel.pk}/"
    assert webhook_url(channel, asked_on("chat.example.net")) == expected
    assert webhook_url(channel) == expected


def test_the_channel_page_shows_the_webhook_url_on_the_pages_host(
    unconfigured, owner_client, tenant
):
    channel = make_channel("telegram", tenant=tenant)
    page = owner_client.get(
        f"/dashboard/messaging/channel/{channel.pk}/change/", HTTP_HOST="chat.example.net"
    )
    assert f"http://chat.example.net/hooks/telegram/{channel.pk}/" in page.content.decode()
    assert "localhost:8000" not in page.content.decode()


def twilio_post(client, channel, url: str, host: str):
    body = text_body("twilio")
    headers = signature_headers(channel, body, url=url)
    return post(client, channel, body, {**headers, "HTTP_HOST": host})


def test_twilio_signs_the_url_it_called_on_the_requests_host_when_none_is_configured(
    unconfigured, client
):
    channel = make_channel("twilio")
    url = "http://chat.example.net" + hook_path(channel)
    assert twilio_post(client, channel, url, "chat.example.net").status_code == 200
    assert Message.objects.count() == 1
    # The same signature over the guess is not what Twilio called: refused.
    guess = GUESS + hook_path(channel)
    assert twilio_post(client, channel, guess, "chat.example.net").status_code == 403


def test_twilio_signs_the_configured_public_url_behind_a_proxy(configured, client):
    channel = make_channel("twilio")
    public = "https://chat.example.com" + hook_path(channel)
    inner = "http://chat.example.net" + hook_path(channel)
    assert twilio_post(client, channel, inner, "chat.example.net").status_code == 403
    assert twilio_post(client, channel, public, "chat.example.net").status_code == 200


def invitation_link() -> str:
    [sent] = mail.outbox
    return re.search(r"https?://\S+", sent.body).group(0)


def test_an_invitation_link_is_on_the_host_the_owner_invited_from(
    unconfigured, owner_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/dashboard/tenancy/invitation/add/",
            {"email": "new@example.com", "role": "admin"},
            HTTP_HOST="chat.example.net",
        )
    assert response.status_code == 302
    assert invitation_link().startswith("http://chat.example.net/accounts/invitation/")


def test_an_invitation_sent_again_from_the_dashboard_too(
    unconfigured, owner_client, tenant, django_capture_on_commit_callbacks
):
    from chattonic.tenancy.models import Invitation
    from chattonic.tenancy.services import invitation_create

    with django_capture_on_commit_callbacks(execute=True):
        invitation_create(tenant=tenant, email="again@example.com", role="admin", invited_by=None)
    assert invitation_link().startswith(GUESS + "/accounts/invitation/")  # no request: guess
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/dashboard/tenancy/invitation/",
            {"action": "resend", "_selected_action": [Invitation.objects.get().pk]},
            HTTP_HOST="chat.example.net",
        )
    assert invitation_link().startswith("http://chat.example.net/accounts/invitation/")


def test_an_invitation_link_is_on_the_configured_url(
    configured, owner_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/dashboard/tenancy/invitation/add/",
            {"email": "new@example.com", "role": "admin"},
            HTTP_HOST="chat.example.net",
        )
    assert invitation_link().startswith("https://chat.example.com/accounts/invitation/")


def test_trello_links_made_by_tasks_use_the_configured_url_or_the_guess(unconfigured, tenant):
    ticket = TicketFactory(tenant=tenant)
    assert ticket_link(ticket) == f"{GUESS}/dashboard/support/ticket/{ticket.pk}/change/"
    assert callback_url() == f"{GUESS}/hooks/trello/"


def test_trello_links_on_the_configured_url(configured, tenant):
    ticket = TicketFactory(tenant=tenant)
    assert ticket_link(ticket).startswith("https://chat.example.com/dashboard/support/ticket/")
