"""Staff accounts through the tenant owner's door (the dashboard), the invitation link and
the sign-in pages: a tenant invites people and removes its members, and never changes an
account it does not own (an operator's, another tenant's member's), nor learns whether an
address has an account elsewhere."""

from __future__ import annotations

import hashlib
import importlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.core import mail
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import timezone

from chattonic.tenancy.models import Invitation, Membership, Tenant
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

OPERATOR_EMAIL = "op@platform.example"
OPERATOR_PASSWORD = "operator-Passphrase-1"
PASSWORD = "a-Long-passphrase-42"
INVITE = "/dashboard/tenancy/invitation/add/"


@pytest.fixture
def operator():
    return User.objects.create_superuser(OPERATOR_EMAIL, OPERATOR_EMAIL, OPERATOR_PASSWORD)


def account(user) -> dict:
    """Everything stored about an account (password hash, flags, names, groups)."""
    return model_to_dict(User.objects.get(pk=user.pk))


def invite(client, email: str, role: str = "agent", capture=None):
    with capture(execute=True):
        return client.post(INVITE, {"email": email, "role": role}, follow=True)


def answer(response, email: str) -> dict:
    """What the owner sees after inviting ``email``, with the address itself blanked."""
    return {
        "status": response.status_code,
        "chain": response.redirect_chain,
        "messages": [m.message.replace(email, "<email>") for m in response.context["messages"]],
    }


def link_in(message) -> str:
    """The path of the invitation link in an email."""
    url = re.search(r"https?://\S+", message.body).group(0)
    return "/" + url.split("/", 3)[3]


def sign_in_dashboard(client, username: str, password: str):
    return client.post(
        "/dashboard/login/", {"username": username, "password": password, "next": "/dashboard/"}
    )


# --- Joining ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "landing", "is_staff"), [("admin", "/dashboard/", True), ("agent", "/console/", False)]
)
def test_an_invited_person_chooses_a_name_and_password_and_joins(
    owner_client, owner, tenant, django_capture_on_commit_callbacks, role, landing, is_staff
):
    response = invite(owner_client, "New@Example.com", role, django_capture_on_commit_callbacks)
    assert "Invitation sent to <email>." in answer(response, "new@example.com")["messages"]
    assert not User.objects.filter(username="new@example.com").exists()  # not before accepting
    [sent] = mail.outbox
    assert sent.to == ["new@example.com"] and tenant.name in sent.subject
    link = link_in(sent)

    visitor = Client()
    page = visitor.get(link)
    assert page.status_code == 200 and f"Join {tenant.name}" in page.content.decode()
    differ = visitor.post(link, {"first_name": "Nina", "password1": PASSWORD, "password2": "x"})
    weak = visitor.post(link, {"first_name": "Nina", "password1": "123", "password2": "123"})
    assert "differ" in differ.content.decode() and weak.status_code == 200
    # Visitors see the first name: an address there is refused.
    address = visitor.post(
        link, {"first_name": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert "not an email address" in address.content.decode()
    assert not User.objects.filter(username="new@example.com").exists()

    joined = visitor.post(
        link, {"first_name": "Nina", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert joined.status_code == 302 and joined["Location"] == landing
    user = User.objects.get(username="new@example.com")
    membership = user.membership
    assert (user.first_name, user.email, user.is_staff) == ("Nina", "new@example.com", is_staff)
    assert membership.tenant == tenant and membership.role == role
    assert membership.owns_account and membership.invited_by == owner
    assert visitor.get(landing).status_code == 200  # signed in
    assert not Invitation.objects.exists()
    assert Client().get(link).status_code == 404  # used up


def test_inviting_a_pending_address_again_sends_a_new_link(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    invite(owner_client, "sam@example.com", "agent", django_capture_on_commit_callbacks)
    again = invite(owner_client, "Sam@Example.com", "admin", django_capture_on_commit_callbacks)
    assert "Invitation sent to <email>." in answer(again, "sam@example.com")["messages"]
    assert Invitation.objects.get().role == "admin"
    first, second = (link_in(m) for m in mail.outbox)
    assert Client().get(first).status_code == 404 and Client().get(second).status_code == 200


def test_inviting_someone_already_on_your_team_says_so(owner_client, tenant, owner):
    response = owner_client.post(INVITE, {"email": owner.email, "role": "agent"}, follow=True)
    assert "already on your team" in response.content.decode()
    assert not Invitation.objects.exists() and not mail.outbox


def test_an_invitation_link_stops_working_once_withdrawn_replaced_or_expired(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    invite(owner_client, "sam@example.com", capture=django_capture_on_commit_callbacks)
    first = link_in(mail.outbox[-1])
    invitation = Invitation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(
            "/dashboard/tenancy/invitation/",
            {"action": "resend", "_selected_action": [invitation.pk]},
        )
    second = link_in(mail.outbox[-1])
    assert first != second
    assert Client().get(first).status_code == 404
    assert Client().get(second).status_code == 200

    owner_client.post(f"/dashboard/tenancy/invitation/{invitation.pk}/delete/", {"post": "yes"})
    assert not Invitation.objects.exists()
    assert Client().get(second).status_code == 404

    invite(owner_client, "sam@example.com", capture=django_capture_on_commit_callbacks)
    third = link_in(mail.outbox[-1])
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=False):
        assert Client().get(third).status_code == 404
        refused = Client().post(
            third, {"first_name": "Sam", "password1": PASSWORD, "password2": PASSWORD}
        )
        assert refused.status_code == 404
    assert not User.objects.filter(username="sam@example.com").exists()


def test_an_invitation_keeps_only_its_tokens_hash_and_lasts_seven_days(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    """security.md: the link is valid 7 days; only the token's SHA-256 is stored."""
    sent = timezone.now()
    with time_machine.travel(sent, tick=False):
        invite(owner_client, "kim@example.com", capture=django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[-1])
    token = link.rstrip("/").rsplit("/", 1)[1]
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    columns = {f.attname: str(getattr(invitation, f.attname)) for f in Invitation._meta.fields}
    assert "token_hash" in columns
    assert not [name for name, value in columns.items() if token in value]
    with time_machine.travel(sent + timedelta(days=7) - timedelta(minutes=1), tick=False):
        assert Client().get(link).status_code == 200
    with time_machine.travel(sent + timedelta(days=7) + timedelta(minutes=1), tick=False):
        assert Client().get(link).status_code == 404


# --- An address that has an account elsewhere -------------------------------------------------


def test_the_owner_gets_the_same_answer_whether_or_not_the_address_has_an_account(
    owner_client, tenant, operator, django_capture_on_commit_callbacks
):
    elsewhere = MembershipFactory(tenant=TenantFactory(), role="admin").user
    closed = UserFactory(is_active=False)
    fresh = "nobody-yet@example.com"
    before = {user.pk: account(user) for user in (operator, elsewhere, closed)}

    answers = {
        email: answer(
            invite(owner_client, email, "agent", django_capture_on_commit_callbacks), email
        )
        for email in (fresh, operator.email, elsewhere.email, closed.email)
    }
    assert all(seen == answers[fresh] for seen in answers.values()), answers
    # The same rows and the same mail for each, and no account touched.
    assert sorted(Invitation.objects.for_tenant(tenant).values_list("email", "role")) == sorted(
        (email, "agent") for email in answers
    )
    assert sorted(m.to[0] for m in mail.outbox) == sorted(answers)
    assert len({m.subject for m in mail.outbox}) == 1
    assert {user.pk: account(user) for user in (operator, elsewhere, closed)} == before
    assert not Membership.objects.filter(user__in=[operator, closed]).exists()
    assert elsewhere.membership.tenant != tenant


@pytest.mark.parametrize("who", ["operator", "member elsewhere"])
def test_an_existing_account_is_never_changed_by_an_invitation_even_when_its_link_is_used(
    owner_client, tenant, operator, django_capture_on_commit_callbacks, who
):
    person = operator if who == "operator" else MembershipFactory(role="admin").user
    before = account(person)
    invite(owner_client, person.email, "agent", django_capture_on_commit_callbacks)
    link = link_in(mail.outbox[-1])

    mailbox = Client()
    page = mailbox.get(link)
    assert "already has a Chat-Tonic account" in page.content.decode()
    used = mailbox.post(link, {"first_name": "X", "password1": PASSWORD, "password2": PASSWORD})
    assert "already has a Chat-Tonic account" in used.content.decode()
    assert account(person) == before
    assert not Membership.objects.for_tenant(tenant).filter(user=person).exists()

    if who == "operator":
        # The operator still signs in to the dashboard and sees every tenant.
        signed_in = sign_in_dashboard(Client(), OPERATOR_EMAIL, OPERATOR_PASSWORD)
        assert signed_in.status_code == 302 and signed_in["Location"] == "/dashboard/"


def test_the_old_membership_add_door_is_closed(owner_client, tenant, operator):
    response = owner_client.post(
        "/dashboard/tenancy/membership/add/", {"email": operator.email, "role": "agent"}
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=operator).exists()
    assert account(operator)["is_staff"] is True


# --- Removing members and changing roles ------------------------------------------------------


def _not_owned(tenant, kind: str, operator) -> Membership:
    """Memberships that earlier versions made over existing accounts."""
    if kind == "operator":
        return Membership.objects.create(tenant=tenant, user=operator, role="admin")
    if kind == "promoted operator":  # made by an invitation, then made a superuser
        operator_account = UserFactory(is_superuser=True, is_staff=True)
        return Membership.objects.create(
            tenant=tenant, user=operator_account, role="admin", owns_account=True
        )
    older = UserFactory(is_staff=True)
    return Membership.objects.create(tenant=tenant, user=older, role="admin")


@pytest.mark.parametrize("kind", ["operator", "promoted operator", "account of its own"])
def test_removing_a_member_leaves_an_account_the_tenant_does_not_own(
    owner_client, tenant, operator, kind
):
    membership = _not_owned(tenant, kind, operator)
    user = membership.user
    before = account(user)

    changed = owner_client.post(
        f"/dashboard/tenancy/membership/{membership.pk}/change/", {"role": "agent"}
    )
    assert changed.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "agent"
    assert account(user) == before  # the staff flag is not the tenant's to change

    removed = owner_client.post(
        f"/dashboard/tenancy/membership/{membership.pk}/delete/", {"post": "yes"}
    )
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert account(user) == before
    if kind == "operator":
        signed_in = sign_in_dashboard(Client(), OPERATOR_EMAIL, OPERATOR_PASSWORD)
        assert signed_in.status_code == 302 and signed_in["Location"] == "/dashboard/"


def test_removing_a_member_closes_the_account_their_invitation_made(owner_client, tenant):
    member = MembershipFactory(tenant=tenant, role="agent", owns_account=True)
    agent = member.user
    agents_console = Client()
    agents_console.force_login(agent)
    assert agents_console.get("/console/").status_code == 200

    response = owner_client.post(
        f"/dashboard/tenancy/membership/{member.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    agent.refresh_from_db()
    assert not agent.is_active and not agent.is_staff
    assert agents_console.get("/console/").status_code == 302  # signed out
    refused = Client().post(
        "/console/login/", {"username": agent.username, "password": "correct horse battery staple"}
    )
    assert refused.status_code == 200 and "did not match" in refused.content.decode()


def test_an_owner_of_another_tenant_cannot_remove_or_change_our_members(client, tenant):
    ours = MembershipFactory(tenant=tenant, role="agent")
    client.force_login(MembershipFactory(tenant=TenantFactory(), role="owner").user)
    assert (
        client.post(f"/dashboard/tenancy/membership/{ours.pk}/delete/", {"post": "yes"}).status_code
        == 404
    )
    assert (
        client.post(
            f"/dashboard/tenancy/membership/{ours.pk}/change/", {"role": "owner"}
        ).status_code
        == 404
    )
    ours.refresh_from_db()
    assert ours.role == "agent" and ours.user.is_active


# --- Tenants made by operators ----------------------------------------------------------------


def test_an_operator_makes_a_tenant_whose_owner_is_invited(
    client, operator, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    taken = MembershipFactory(role="agent").user
    before = account(taken)
    refused = client.post(
        "/dashboard/tenancy/tenant/add/",
        {"name": "Acme", "slug": "acme", "owner_email": taken.email},
        follow=True,
    )
    assert "already has an account" in refused.content.decode()
    assert not Tenant.objects.filter(slug="acme").exists() and account(taken) == before

    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(
            "/dashboard/tenancy/tenant/add/",
            {"name": "Acme", "slug": "acme", "owner_email": "boss@acme.example"},
        )
    assert made.status_code == 302
    acme = Tenant.objects.get(slug="acme")
    assert Invitation.objects.for_tenant(acme).get().role == "owner"
    assert [m.to for m in mail.outbox] == [["boss@acme.example"]]
    joined = Client().post(
        link_in(mail.outbox[0]),
        {"first_name": "Bo", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert joined["Location"] == "/dashboard/"
    assert Membership.objects.for_tenant(acme).get().role == "owner"


# --- Accounts from before invitations had their own page --------------------------------------


def test_the_migration_gives_memberships_the_accounts_they_made_and_operators_their_flag():
    migration = importlib.import_module(
        "chattonic.tenancy.migrations.0003_invitations_account_ownership"
    )
    tenant = TenantFactory()
    invited = Membership.objects.create(tenant=tenant, user=UserFactory(), role="agent")
    demoted = User.objects.create_superuser("root@platform.example", "root@platform.example", "x")
    User.objects.filter(pk=demoted.pk).update(is_staff=False)  # what the old invitation did
    taken = Membership.objects.create(tenant=tenant, user=demoted, role="agent")
    old = UserFactory()
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=30))
    reused = Membership.objects.create(tenant=tenant, user=old, role="agent")

    migration.memberships_own_their_accounts(django_apps, None)

    owned = dict(Membership.objects.values_list("pk", "owns_account"))
    assert owned == {invited.pk: True, taken.pk: False, reused.pk: False}
    assert User.objects.get(pk=demoted.pk).is_staff


def test_memberships_are_not_reachable_through_the_rest_api():
    """docs/security.md: the dashboard's staff pages are the owners' only door to members."""
    from django.urls import get_resolver

    def walk(patterns, prefix=""):
        for p in patterns:
            here = prefix + str(p.pattern)
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, here)
            else:
                yield here

    api = [route for route in walk(get_resolver().url_patterns) if route.startswith("api/")]
    assert any("contacts" in route for route in api)  # the walk sees the API
    doors = [r for r in api if any(w in r for w in ("member", "invitation", "user", "staff"))]
    assert doors == []
