"""The outbound-request guard (chattonic/core/outbound.py): what it refuses, that the check
is on the address the connection goes to (DNS rebinding gains nothing), redirects, the
operators' OUTBOUND_ALLOWED_HOSTS; and that every door that calls out (a lead webhook, the
flows' HTTP node, the API channel, a platform's send API, Trello) refuses the deployment's
own network with one text, sending nothing. The fakes listen on 127.0.0.1 and are refused
like any internal server unless a test names them in the setting (``fake.allow(settings)``).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bots.tasks import perform_http_request
from chattonic.core import credentials as vault
from chattonic.core import outbound
from chattonic.core.outbound import REFUSED, OutboundRefused, address_refused, url_problem
from conversations.models import Message
from leads.models import LeadWebhook
from leads.services import lead_capture
from messaging.connectors import OutboundMessage, get_connector
from messaging.models import Channel, DeliveryAttempt
from messaging.tasks import message_send
from support import services as support_services
from support.models import Ticket, TrelloOutbox
from tests.factories import (
    ConversationFactory,
    LeadWebhookFactory,
    MessageFactory,
    TenantFactory,
)
from tests.fakes.channels import make_channel
from tests.fakes.server import Answer, FakeServer, Recorded


class Internal(FakeServer):
    """A server on 127.0.0.1 answering 200: an internal service, as far as the guard knows."""

    def handle(self, request: Recorded) -> Answer:
        return Answer(200, {"ok": True})


@pytest.fixture
def server():
    """An internal server (not allowed unless a test says so)."""
    with Internal() as fake:
        yield fake


@pytest.fixture
def resolver(monkeypatch):
    """Names of the tests' own, resolved by the test: ``resolver["name"] = [addresses]``
    (each lookup takes the next answer; the last one stays). Other names resolve as usual.
    ``resolver.lookups`` counts the lookups of each name."""
    real = socket.getaddrinfo

    class Resolver(dict):
        lookups: dict[str, int] = {}

    names = Resolver()
    names.lookups = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            names.lookups[host] = names.lookups.get(host, 0) + 1
            answers = names[host]
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            return real(answer, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


# --- What is refused --------------------------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",  # noqa: S104
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.0.8",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",  # the metadata service over IPv6
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_internal_addresses_are_refused(address):
    assert address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert not address_refused(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://0x7f000001/",
        "ftp://example.com/",
        "file:///etc/passwd",
    ],
)
def test_a_guarded_session_refuses_before_sending(url):
    with outbound.session() as session, pytest.raises(OutboundRefused) as caught:
        session.get(url, timeout=2)
    assert str(caught.value) == REFUSED


def test_a_loopback_server_is_refused_until_the_setting_names_it(server, settings):
    with outbound.session() as session:
        with pytest.raises(OutboundRefused):
            session.get(server.base_url + "/x", timeout=2)
        assert server.requests == []
        server.allow(settings)
        assert session.get(server.base_url + "/x", timeout=2).status_code == 200
    assert [r.path for r in server.requests] == ["/x"]


@pytest.mark.parametrize(
    ("entry", "allowed"),
    [
        ("127.0.0.1", True),  # a host: every port
        ("127.0.0.1:{port}", True),
        ("127.0.0.1:1", False),  # another port
        ("localhost:{port}", False),  # the setting names hosts as the URL writes them
        ("127.0.0.2", False),
    ],
)
def test_the_setting_names_hosts_or_host_and_port(server, settings, entry, allowed):
    settings.OUTBOUND_ALLOWED_HOSTS = [entry.format(port=server.port)]
    with outbound.session() as session:
        if allowed:
            assert session.get(server.base_url, timeout=2).status_code == 200
        else:
            with pytest.raises(OutboundRefused):
                session.get(server.base_url, timeout=2)
            assert server.requests == []


def test_a_name_is_refused_for_what_it_resolves_to(server, resolver):
    resolver["hooks.tenant.test"] = ["127.0.0.1"]
    url = f"http://hooks.tenant.test:{server.port}/"
    assert url_problem(url) is None  # a name passes when saved ...
    with outbound.session() as session:
        for target in (url, f"http://localhost:{server.port}/"):
            with pytest.raises(OutboundRefused):  # ... and is refused when connecting
                session.get(target, timeout=2)
    assert server.requests == []


def test_the_connection_goes_to_the_address_that_was_checked(server, resolver, monkeypatch):
    """DNS rebinding: the name answers one address and then another. The guard looks the
    name up once and connects to the address it checked. The tests cannot reach a public
    address, so here 127.0.0.1 stands for a public one and 127.0.0.2 for an internal one."""
    monkeypatch.setattr(outbound, "address_refused", lambda address: str(address) != "127.0.0.1")
    resolver["rebind.test"] = ["127.0.0.1", "127.0.0.2"]
    with outbound.session() as session:
        response = session.get(f"http://rebind.test:{server.port}/hello", timeout=2)
    assert response.status_code == 200  # not a refusal, not 127.0.0.2 (nothing listens there)
    assert resolver.lookups["rebind.test"] == 1
    [request] = server.requests
    assert request.headers["Host"] == f"rebind.test:{server.port}"  # the name is kept


def _certificate(tmp_path, name: str):
    """A self-signed certificate for ``name``: (its PEM file as the trusted CA, a server
    context serving it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return str(cert_file), context


def test_https_to_a_checked_address_still_checks_the_certificate_against_the_name(
    tmp_path, resolver, monkeypatch
):
    """The connection goes to the checked IP, yet TLS sends the name (SNI) and checks the
    certificate against it: a certificate for the name passes, one for another name fails.
    (127.0.0.1 stands for a public address here, as in the test above.)"""
    monkeypatch.setattr(outbound, "address_refused", lambda address: str(address) != "127.0.0.1")
    resolver["api.platform.test"] = ["127.0.0.1"]
    resolver["elsewhere.test"] = ["127.0.0.1"]
    ca, context = _certificate(tmp_path, "api.platform.test")
    with Internal(tls=context) as platform, outbound.session() as session:
        url = f"https://api.platform.test:{platform.port}/send"
        assert session.get(url, verify=ca, timeout=5).status_code == 200
        [request] = platform.requests
        assert request.headers["Host"] == f"api.platform.test:{platform.port}"
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"https://elsewhere.test:{platform.port}/send", verify=ca, timeout=5)
        assert len(platform.requests) == 1


def test_every_redirect_is_checked_again(settings):
    with Internal() as inside, Internal() as allowed:
        allowed.allow(settings)
        allowed.script(Answer(302, b"", {"Location": inside.base_url + "/admin"}))
        with outbound.session() as session, pytest.raises(OutboundRefused):
            session.get(allowed.base_url + "/go", timeout=2)
        assert inside.requests == []


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://crm.example.com/hook", None),
        ("http://93.184.215.14/hook", None),
        ("http://10.0.0.1/", "Private"),
        ("http://[fd00::1]/", "Private"),
        ("http://localhost:8000/", "Private"),
        ("http://app.localhost/", "Private"),
        ("ftp://example.com/", "http://"),
        ("https:///path", "no host"),
        ("http://[::1/", "valid"),
    ],
)
def test_what_is_refused_when_saved(url, problem):
    found = url_problem(url)
    assert (found is None) if problem is None else (problem in found)


def test_an_allowed_host_may_be_saved(settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["10.0.0.5:8443"]
    assert url_problem("https://10.0.0.5:8443/leads") is None
    assert url_problem("https://10.0.0.5/leads") is not None


# --- Every door -------------------------------------------------------------------------------
# Each door is given an internal URL (the fake on 127.0.0.1, open, not allowed; the metadata
# service; a private address) and must send nothing and store the one refusal text.


def _pending_reply(channel: Channel) -> Message:
    conversation = ConversationFactory(
        tenant=channel.tenant,
        bot=channel.bot,
        channel=channel,
        channel_kind=channel.kind,
        recipient_id="111111111",
        bot_version_id=channel.bot.published_version_id,
    )
    return MessageFactory(
        tenant=channel.tenant,
        conversation=conversation,
        channel=channel,
        direction=Message.Direction.OUT,
        sender=Message.Sender.BOT,
        text="Plans start at $10.",
        status=Message.Status.PENDING,
    )


def lead_webhook(url, settings, capture) -> str:
    # Stored as an old row would be (the save-time check refuses literal addresses).
    hook = LeadWebhookFactory(url=url)
    with capture(execute=True):
        lead_capture(
            conversation=ConversationFactory(tenant=hook.tenant), fields={"email": "a@b.co"}
        )
    return LeadWebhook.objects.get(pk=hook.pk).last_status


def http_node(url, settings, capture) -> str:
    outcome = perform_http_request({"method": "POST", "url": url, "timeout": 2})
    assert (outcome["status"], outcome["error"]) == (None, "error")
    return outcome["detail"]


def api_channel(url, settings, capture) -> str:
    channel = make_channel("api")
    # Stored as an old row would be (the save-time check refuses literal addresses).
    credentials = {"signing_secret": "tenant-signing-secret", "webhook_url": url}
    Channel.objects.filter(pk=channel.pk).update(credentials_encrypted=vault.encrypt(credentials))
    message = _pending_reply(channel)
    assert message_send.delay(message.pk).get() == "failed"
    attempt = DeliveryAttempt.objects.get(message=message)
    assert attempt.error == REFUSED
    return Message.objects.get(pk=message.pk).error


def platform_send(url, settings, capture) -> str:
    settings.TELEGRAM_API_BASE = url
    message = _pending_reply(make_channel("telegram"))
    assert message_send.delay(message.pk).get() == "failed"
    return Message.objects.get(pk=message.pk).error


def trello(url, settings, capture) -> str:
    settings.TRELLO_API_BASE = url
    settings.TRELLO_KEY, settings.TRELLO_TOKEN, settings.TRELLO_BOARD_ID = "k" * 32, "t" * 64, "b1"
    with capture(execute=True):
        support_services.ticket_create(
            tenant=TenantFactory(), title="Help", source=Ticket.Source.DASHBOARD
        )
    entry = TrelloOutbox.objects.get()
    assert entry.state == TrelloOutbox.State.PENDING  # kept: the setting can be fixed
    return entry.last_error


DOORS = [lead_webhook, http_node, api_channel, platform_send, trello]


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
@pytest.mark.parametrize("target", ["loopback", "metadata", "private"])
def test_every_door_refuses_internal_addresses_and_sends_nothing(
    door, target, settings, django_capture_on_commit_callbacks
):
    settings.CHANNEL_RATE_LIMITS = False
    assert settings.OUTBOUND_ALLOWED_HOSTS == []  # the setting absent (tests/conftest.py)
    with Internal() as listening:
        url = {
            "loopback": listening.root_url,
            "metadata": "http://169.254.169.254/latest",
            "private": "http://10.20.30.40:8080",
        }[target]
        error = door(url, settings, django_capture_on_commit_callbacks)
        assert listening.requests == []
    assert error.startswith(REFUSED)


def test_a_connector_sends_only_through_the_guarded_session(server, settings):
    server.allow(settings)
    settings.TELEGRAM_API_BASE = server.base_url
    with requests.Session() as plain, pytest.raises(TypeError):
        get_connector("telegram").send(
            credentials={"bot_token": "1:abc", "secret_token": "s"},
            recipient_id="7",
            message=OutboundMessage("hi"),
            session=plain,
            timeout=2,
        )
    assert server.requests == []


def test_a_refused_request_is_not_a_network_error():
    """Callers retry network errors; a refusal needs a new URL or setting instead."""
    assert not issubclass(OutboundRefused, requests.ConnectionError)
