"""Sign-in throttling (django-axes) on both sign-in pages, through the pages themselves:
wrong passwords for one username from one address lock that pair out for a while, the
right password included; other people and other addresses are not affected."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from django.utils import timezone
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from chattonic.asgi import application
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

PASSWORD = "correct horse battery staple"  # UserFactory's
ATTACKER = "198.51.100.66"
DOORS = {
    "dashboard": ("/dashboard/login/", "/dashboard/"),
    "console": ("/console/login/", "/console/"),
}


@pytest.fixture(params=sorted(DOORS))
def door(request):
    return DOORS[request.param]


@pytest.fixture
def person(tenant):
    """An owner: welcome at both doors."""
    return MembershipFactory(tenant=tenant, role="owner").user


def sign_in(door, username: str, password: str, ip: str = ATTACKER, client: Client | None = None):
    page, landing = door
    client = client or Client()
    response = client.post(
        page, {"username": username, "password": password, "next": landing}, REMOTE_ADDR=ip
    )
    return client, response


def signed_in(response, door) -> bool:
    return response.status_code == 302 and response["Location"] == door[1]


def locked_out(response) -> bool:
    return response.status_code == 429 and "Too many sign-in attempts" in response.content.decode()


def fail(door, username: str, times: int, ip: str = ATTACKER) -> list:
    return [sign_in(door, username, "wrong-password", ip)[1] for _ in range(times)]


def test_both_sign_in_pages_ask_for_the_same_thing(client):
    """The dashboard said "Username:" where staff sign in with their email; both doors now
    say "Username (email)", as the console did."""
    for path in ("/dashboard/login/", "/console/login/"):
        page = client.get(path).content.decode()
        assert "Username (email)" in page, path


def test_wrong_passwords_lock_out_that_username_from_that_address(door, person):
    limit = settings.AXES_FAILURE_LIMIT
    responses = fail(door, person.username, limit)
    assert all(r.status_code == 200 for r in responses[:-1])  # the form, with its error
    assert locked_out(responses[-1])

    client, response = sign_in(door, person.username, PASSWORD)
    assert locked_out(response)
    assert person.username in response.content.decode()
    assert "_auth_user_id" not in client.session

    # Another address signs in as that person; another person signs in from that address.
    assert signed_in(sign_in(door, person.username, PASSWORD, ip="203.0.113.5")[1], door)
    colleague = MembershipFactory(tenant=person.membership.tenant, role="owner").user
    assert signed_in(sign_in(door, colleague.username, PASSWORD)[1], door)


def test_the_lockout_ends_after_the_cool_off(door, person):
    fail(door, person.username, settings.AXES_FAILURE_LIMIT)
    cool_off = settings.AXES_COOLOFF_TIME
    start, minute = timezone.now(), timedelta(minutes=1)
    with time_machine.travel(start + cool_off - minute, tick=False):
        assert locked_out(sign_in(door, person.username, PASSWORD)[1])
    # A refused attempt during the lockout starts the cool-off again (security.md): two
    # minutes later the first cool-off has passed, and the pair is still refused.
    with time_machine.travel(start + cool_off + minute, tick=False):
        assert locked_out(sign_in(door, person.username, PASSWORD)[1])
    # ... until a whole cool-off has passed since that last attempt.
    with time_machine.travel(start + 2 * cool_off + 2 * minute, tick=False):
        client, response = sign_in(door, person.username, PASSWORD)
        assert signed_in(response, door)
        assert client.get(door[1]).status_code == 200


def test_a_successful_sign_in_clears_the_count(door, person):
    limit = settings.AXES_FAILURE_LIMIT
    fail(door, person.username, limit - 1)
    assert signed_in(sign_in(door, person.username, PASSWORD)[1], door)
    responses = fail(door, person.username, limit - 1)
    assert all(r.status_code == 200 for r in responses)
    assert signed_in(sign_in(door, person.username, PASSWORD)[1], door)


def test_unknown_usernames_are_counted_and_answered_alike(door):
    responses = fail(door, "nobody@example.com", settings.AXES_FAILURE_LIMIT)
    assert locked_out(responses[-1])


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_page_under_asgi(person):
    """Production serves ASGI (uvicorn): the lockout answer is the same there."""
    limit = settings.AXES_FAILURE_LIMIT
    client = AsyncClient(REMOTE_ADDR=ATTACKER)
    data = {"username": person.username, "password": "wrong", "next": "/console/"}
    for _ in range(limit):
        response = await client.post("/console/login/", data)
    assert locked_out(response)
    response = await client.post("/console/login/", {**data, "password": PASSWORD})
    assert locked_out(response)


# --- Behind the load balancer ------------------------------------------------------------------

PROXY = "10.0.0.2"
CSRF = "a" * 32  # a CSRF secret as the cookie and the form's token


async def post_via(peer: str, forwarded_for: str, path: str, data: str) -> int:
    """POST through what ``uvicorn --proxy-headers`` puts in front of the app, from the TCP
    peer ``peer`` with ``X-Forwarded-For: forwarded_for``; the proxy ``PROXY`` is trusted
    (FORWARDED_ALLOW_IPS)."""
    app = ProxyHeadersMiddleware(application, trusted_hosts=PROXY)
    body = f"{data}&csrfmiddlewaretoken={CSRF}".encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"cookie", f"csrftoken={CSRF}".encode()),
            (b"x-forwarded-for", forwarded_for.encode()),
        ],
        "client": (peer, 50000),
        "server": ("localhost", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    while (await communicator.receive_output(10)).get("more_body"):
        pass
    await communicator.wait(10)
    return start["status"]


@pytest.mark.django_db(transaction=True)
async def test_behind_the_proxy_the_client_address_is_the_forwarded_one(person):
    limit = settings.AXES_FAILURE_LIMIT
    wrong = f"username={person.username}&password=wrong&next=/console/"
    right = f"username={person.username}&password={PASSWORD.replace(' ', '+')}&next=/console/"
    for _ in range(limit):
        status = await post_via(PROXY, ATTACKER, "/console/login/", wrong)
    assert status == 429
    assert await post_via(PROXY, ATTACKER, "/console/login/", right) == 429
    # The person, through the same proxy from their own address, is not locked out.
    assert await post_via(PROXY, "203.0.113.5", "/console/login/", right) == 302


@pytest.mark.django_db(transaction=True)
async def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(person):
    """A client that connects directly cannot pick its address with X-Forwarded-For."""
    wrong = f"username={person.username}&password=wrong&next=/console/"
    statuses = [
        await post_via(ATTACKER, f"203.0.113.{n}", "/console/login/", wrong)
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses[-1] == 429
