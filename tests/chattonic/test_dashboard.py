import re

import pytest
from django.contrib.auth import get_user_model

from chattonic.tenancy.models import ApiKey
from chattonic.tenancy.selectors import api_key_from_token
from tests.factories import ApiKeyFactory, MembershipFactory

pytestmark = pytest.mark.django_db

User = get_user_model()


def login(client, tenant, role):
    user = MembershipFactory(tenant=tenant, role=role).user
    client.force_login(user)
    return user


def test_admins_cannot_manage_staff_or_keys(client, tenant):
    login(client, tenant, "admin")
    assert client.get("/dashboard/tenancy/invitation/add/").status_code == 403
    assert client.get("/dashboard/tenancy/apikey/add/").status_code == 403
    assert (
        client.post("/dashboard/tenancy/apikey/add/", {"name": "x", "scopes": ["read"]}).status_code
        == 403
    )
    assert not ApiKey.objects.exists()
    assert client.get("/dashboard/tenancy/apikey/").status_code == 200


def test_agents_do_not_enter_the_dashboard(client, tenant):
    login(client, tenant, "agent")
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert "/dashboard/login/" in response["Location"]


def test_owner_creates_a_key_whose_secret_is_shown_once(client, tenant):
    owner = login(client, tenant, "owner")
    response = client.post(
        "/dashboard/tenancy/apikey/add/", {"name": "CRM", "scopes": ["read", "write"]}, follow=True
    )
    assert response.status_code == 200
    text = response.content.decode()
    secret = re.search(r"ct_us\.[0-9a-f]+_[A-Za-z0-9_-]+", text).group(0)
    api_key = api_key_from_token(secret)
    assert api_key.tenant == tenant and api_key.created_by == owner
    assert api_key.scopes == ["read", "write"]
    again = client.get(f"/dashboard/tenancy/apikey/{api_key.pk}/change/").content.decode()
    assert secret not in again
    assert secret.split("_", 2)[2] not in again


def test_owner_revokes_keys_with_the_action(client, tenant):
    login(client, tenant, "owner")
    key = ApiKeyFactory(tenant=tenant)
    client.post("/dashboard/tenancy/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_the_last_owner_cannot_be_demoted(client, tenant):
    owner = login(client, tenant, "owner")
    membership = owner.membership
    response = client.post(
        f"/dashboard/tenancy/membership/{membership.pk}/change/", {"role": "admin"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_superusers_see_every_tenant(client, tenant, other_tenant):
    ours = ApiKeyFactory(tenant=tenant)
    theirs = ApiKeyFactory(tenant=other_tenant)
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw"))
    listed = client.get("/dashboard/tenancy/apikey/").context["cl"].result_list
    assert {ours.pk, theirs.pk} <= {k.pk for k in listed}
    assert client.get(f"/dashboard/tenancy/apikey/{theirs.pk}/change/").status_code == 200


def test_a_new_key_starts_with_read_ticked_and_saves_as_it_comes(client, tenant):
    """The add form's first Save is not refused for want of a scope: read is ticked, and
    the form says so."""
    login(client, tenant, "owner")
    page = client.get("/dashboard/tenancy/apikey/add/").content.decode()
    ticked = re.findall(r'<input type="checkbox" name="scopes" value="(\w+)"[^>]*checked', page)
    assert ticked == ["read"]
    assert "Read is ticked to start with" in page
    response = client.post("/dashboard/tenancy/apikey/add/", {"name": "Reports", "scopes": ticked})
    assert response.status_code == 302
    assert ApiKey.objects.get(name="Reports").scopes == ["read"]


def test_each_list_is_titled_as_the_navigation_names_it(owner_client):
    """A click on "Company" opens "Company" (it opened "Tenants"; "Agents", "Agent profiles";
    "Handoff log", "Handoff events")."""
    from django.apps import apps
    from django.contrib import admin
    from django.urls import reverse

    from chattonic.dashboard import NAVIGATION

    checked = []
    for _, entries in NAVIGATION:
        for label, name in entries:
            model = apps.get_model(label)
            if model not in admin.site._registry:
                continue
            meta = model._meta
            response = owner_client.get(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
            )
            if response.status_code != 200 or "title" not in (response.context or {}):
                continue  # not the tenant's to see, or a page of its own (Statistics)
            assert response.context["title"] == name, label
            checked.append(name)
    assert {"Company", "Agents", "Handoff log", "Conversations"} <= set(checked)
