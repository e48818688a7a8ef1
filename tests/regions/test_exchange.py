"""The identity exchange: its signed door (every refusal, what an answer holds) and what an
import writes and refuses to write over. Between two real deployments: test_two_deployments.py."""

from __future__ import annotations

import hashlib
import hmac
import io
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from bots.models import Bot
from bots.services import bot_publish
from chattonic.regions import region_named
from chattonic.regions.exchange import (
    IDENTITY_FIELDS,
    identity_import,
    request_signature,
    response_signature,
)
from chattonic.regions.tasks import identities_pull
from chattonic.tenancy.models import ApiKey, Membership, Tenant
from chattonic.tenancy.selectors import api_key_from_token
from chattonic.tenancy.services import api_key_create, tenant_create
from tests.conftest import api_client_for
from tests.factories import BotFactory, MembershipFactory, UserFactory
from tests.fakes.server import HANG, FakeServer
from tests.processes import free_port
from tests.regions.config import REGIONS, regions_configure

pytestmark = pytest.mark.django_db
User = get_user_model()
SECRET = "a-secret-the-regions-share"


@pytest.fixture
def regions(settings):
    regions_configure(settings, "us-central")
    settings.CHATTONIC_REGIONS_SECRET = SECRET


def signed_get(path: str, *, region="eu-frankfurt", age=0, secret=SECRET, body=b""):
    timestamp = str(int(time.time()) - age)
    message = "\n".join(
        ["request", "GET", path, timestamp, region, hashlib.sha256(body).hexdigest()]
    )
    signature = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    response = Client().get(
        path,
        HTTP_X_CHATTONIC_REGION=region,
        HTTP_X_CHATTONIC_TIMESTAMP=timestamp,
        HTTP_X_CHATTONIC_SIGNATURE=signature,
    )
    return response, signature


def test_the_identity_door_answers_identity_rows_only_signed_for_the_request(regions):
    tenant = tenant_create(
        name="Globex", slug="globex", owner_email="o@globex.example", owner_password="x9!Pw-a"
    )
    api_key_create(tenant=tenant, name="CRM", scopes=["read"])
    UserFactory(username="root@ops.example", is_superuser=True)  # an operator, not exported
    response, signature = signed_get("/regions/identity/")
    assert response.status_code == 200
    assert response["X-Chattonic-Signature"] == response_signature(signature, response.content)
    data = response.json()
    assert set(data) == {"region", *IDENTITY_FIELDS}
    for kind, fields in IDENTITY_FIELDS.items():
        assert data[kind] and all(set(row) == set(fields) for row in data[kind]), kind
    assert [t["slug"] for t in data["tenants"]] == ["globex"]
    assert [u["username"] for u in data["users"]] == ["o@globex.example"]
    assert "secret_hash" not in str(data) and "root@ops.example" not in str(data)


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"secret": "another-secret"}, "bad_signature"),
        ({"age": 301}, "bad_signature"),  # older than five minutes
        ({"region": "mars-north"}, "bad_signature"),
        ({"region": "us-central"}, "bad_signature"),  # this deployment's own name
    ],
)
def test_a_badly_signed_request_is_403(regions, kwargs, code):
    response, _ = signed_get("/regions/identity/", **kwargs)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert "X-Chattonic-Signature" not in response


def test_without_the_shared_secret_nothing_is_exchanged(regions, settings):
    settings.CHATTONIC_REGIONS_SECRET = ""
    response, _ = signed_get("/regions/identity/", secret="anything")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "exchange_off")


def test_a_moved_bot_is_refused_without_a_good_signature_and_nothing_is_created(regions):
    body = b'{"tenant": "globex", "bot": {"name": "Sneaky"}}'
    timestamp = str(int(time.time()))
    response = Client().post(
        "/regions/bots/",
        body,
        content_type="application/json",
        HTTP_X_CHATTONIC_REGION="eu-frankfurt",
        HTTP_X_CHATTONIC_TIMESTAMP=timestamp,
        HTTP_X_CHATTONIC_SIGNATURE="0" * 64,
    )
    assert response.status_code == 403
    assert not Bot.objects.exists() and not Tenant.objects.exists()


def export(**changes) -> dict:
    """What eu-frankfurt exports of a tenant homed there, with two staff and a key."""
    data = {
        "region": "eu-frankfurt",
        "tenants": [
            {"slug": "initech", "name": "Initech", "assignment_policy": "claim", "created_at": None}
        ],
        "users": [
            {
                "username": name,
                "email": name,
                "first_name": "",
                "last_name": "",
                "password": "pbkdf2_sha256$1$salt$hash",
                "is_active": True,
                "is_staff": True,
                "date_joined": None,
            }
            for name in ("owner@initech.example", "agent@initech.example")
        ],
        "memberships": [
            {
                "tenant": "initech",
                "user": name,
                "role": role,
                "owns_account": True,
                "created_at": None,
            }
            for name, role in (
                ("owner@initech.example", "owner"),
                ("agent@initech.example", "agent"),
            )
        ],
        "api_keys": [
            {
                "tenant": "initech",
                "prefix": "eu.0a1b2c3d4e5f",
                "name": "ERP",
                "scopes": ["read"],
                "created_at": "2026-12-01T10:00:00+00:00",
                "revoked_at": None,
                "secret_hash": "never-taken",
            }
        ],
    }
    data.update(changes)
    return data


def test_an_import_copies_the_identity_and_a_copied_key_never_authenticates(regions):
    counts = identity_import(export(), source=region_named("eu-frankfurt"))
    assert counts == {"tenants": 1, "users": 2, "memberships": 2, "api_keys": 1, "skipped": 0}
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.region == "eu-frankfurt"
    assert Membership.objects.get(user__username="owner@initech.example").role == "owner"
    key = ApiKey.objects.get(prefix="eu.0a1b2c3d4e5f")
    assert (key.tenant, key.secret_hash) == (tenant, "")
    assert api_key_from_token("ct_eu.0a1b2c3d4e5f_anything") is None

    # Again, without the agent: gone from the copy, their copied account closed.
    data = export()
    data["memberships"] = data["memberships"][:1]
    data["users"] = data["users"][:1]
    identity_import(data, source=region_named("eu-frankfurt"))
    assert not Membership.objects.filter(user__username="agent@initech.example").exists()
    assert not User.objects.get(username="agent@initech.example").is_active
    assert Tenant.objects.count() == 1 and ApiKey.objects.count() == 1


def test_an_import_never_writes_over_rows_of_another_home(regions):
    local = tenant_create(
        name="Initech US", slug="initech", owner_email="boss@us.example", owner_password="x9!Pw-b"
    )
    operator = UserFactory(username="owner@initech.example", is_superuser=True)
    password = operator.password
    data = export(
        api_keys=[{**export()["api_keys"][0], "prefix": "us.ffffffffffff"}]  # not eu's to give
    )
    counts = identity_import(data, source=region_named("eu-frankfurt"))
    assert counts["tenants"] == 0 and counts["api_keys"] == 0 and counts["skipped"] >= 3
    local.refresh_from_db()
    assert (local.name, local.region) == ("Initech US", "us-central")
    operator.refresh_from_db()
    assert operator.password == password
    assert not ApiKey.objects.filter(prefix="us.ffffffffffff").exists()
    assert Membership.objects.filter(tenant=local).count() == 1  # its own owner, untouched


def test_the_request_signature_covers_method_path_time_region_and_body(regions):
    base = request_signature("GET", "/regions/identity/", "100", "eu-frankfurt", b"")
    assert base != request_signature("POST", "/regions/identity/", "100", "eu-frankfurt", b"")
    assert base != request_signature("GET", "/regions/bots/", "100", "eu-frankfurt", b"")
    assert base != request_signature("GET", "/regions/identity/", "101", "eu-frankfurt", b"")
    assert base != request_signature("GET", "/regions/identity/", "100", "acme-private", b"")
    assert base != request_signature("GET", "/regions/identity/", "100", "eu-frankfurt", b"x")


def test_the_bots_list_names_a_region_that_does_not_answer_and_lists_nothing_when_off(
    regions, settings, client, tenant
):
    unreachable = {
        **REGIONS,
        "eu-frankfurt": {**REGIONS["eu-frankfurt"], "url": f"http://127.0.0.1:{free_port()}"},
    }
    regions_configure(settings, "us-central", unreachable)
    client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
    page = client.get("/dashboard/bots/bot/").content.decode()
    assert "In EU Frankfurt" in page and "EU Frankfurt did not answer" in page
    assert f'href="{unreachable["eu-frankfurt"]["url"]}/dashboard/"' in page  # the switcher
    settings.CHATTONIC_REGIONS_SECRET = ""
    assert "In EU Frankfurt" not in client.get("/dashboard/bots/bot/").content.decode()


def test_the_bots_list_waits_at_most_3_seconds_for_a_region(regions, settings, client, tenant):
    """docs/regions.md: a region that does not answer within 3 seconds is named with its
    error. (A region that hangs, reached for real: the fake records the request.)"""
    with FakeServer() as eu:
        eu.allow(settings)
        eu.script(HANG)
        hanging = {**REGIONS, "eu-frankfurt": {**REGIONS["eu-frankfurt"], "url": eu.root_url}}
        regions_configure(settings, "us-central", hanging)
        client.force_login(MembershipFactory(tenant=tenant, role="owner").user)
        start = time.monotonic()
        page = client.get("/dashboard/bots/bot/").content.decode()
        waited = time.monotonic() - start
        assert eu.requests, "the request never reached the hanging region"
    assert "EU Frankfurt did not answer" in page
    assert 2.9 <= waited < 10, waited  # 3 s, and the page itself on a loaded machine


def unreachable_eu(settings) -> None:
    regions_configure(
        settings,
        "us-central",
        {
            **REGIONS,
            "eu-frankfurt": {**REGIONS["eu-frankfurt"], "url": f"http://127.0.0.1:{free_port()}"},
        },
    )


def test_a_move_to_a_region_that_cannot_be_reached_changes_nothing(regions, settings, tenant):
    unreachable_eu(settings)
    bot = BotFactory(tenant=tenant, name="Draft")
    bot_publish(bot=bot)
    key = api_key_create(tenant=tenant, name="CRM", scopes=["admin"])
    response = api_client_for(key).post(
        f"/api/v1/bots/{bot.pk}/move/", {"region": "eu-frankfurt"}, format="json"
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "region_unreachable"
    assert Bot.objects.filter(pk=bot.pk, name="Draft").exists()
    assert bot.versions.count() == 1


def test_the_periodic_pull_and_the_command_report_a_region_that_cannot_be_reached(
    regions, settings
):
    unreachable_eu(settings)
    result = identities_pull()
    assert set(result) == {"eu-frankfurt", "acme-private"}
    assert "could not be reached" in result["eu-frankfurt"]
    with pytest.raises(CommandError):
        call_command("regions_pull", stdout=io.StringIO(), stderr=io.StringIO())
    settings.CHATTONIC_REGIONS_SECRET = ""
    assert identities_pull() == {}  # the exchange is off
