"""A new agent's first steps in a real browser, through the visible controls only: the owner
invites them from the dashboard; they open the emailed link, choose their name and password,
and land in the console, signed in and connected, under the name they chose. An agent who
opens the dashboard is sent to its sign-in page, which points them to the console."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import assert_accessible
from tests.e2e.test_bot_pages import PASSWORD, sign_in
from tests.factories import InvitationFactory, MembershipFactory
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_invited_agent_joins_from_the_emailed_link(new_context, tenant, tmp_path):
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    page = new_context().new_page()
    sign_in(page, owner.username, "/dashboard/tenancy/invitation/")
    page.get_by_role("link", name="Add invitation").click()
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Invitation sent to nina@example.com.")).to_be_visible()

    # The email (the web process's console backend writes it to its log).
    log = tmp_path / "web.log"
    link = wait_for(
        lambda: re.search(r"http://\S+/accounts/invitation/\S+/", log.read_text(errors="replace")),
        10,
        what="the invitation's email",
    ).group(0)

    nina = new_context().new_page()
    nina.goto(link)
    expect(nina.get_by_role("heading", name=f"Join {tenant.name}")).to_be_visible()
    assert_accessible(nina)
    nina.get_by_label("Your name").fill("Nina")
    nina.get_by_label("Password", exact=True).fill("a-long-pass-phrase-42")
    nina.get_by_label("Password again").fill("a-long-pass-phrase-42")
    # The page keeps its link out of other sites' Referer, and its form still passes the
    # CSRF check (a no-referrer policy made Chromium send "Origin: null": a 403).
    nina.get_by_role("button", name="Create my account").click()
    expect(nina).to_have_url(re.compile(r"/console/$"))
    expect(nina.locator("#connection")).to_have_text("Connected")
    expect(nina.get_by_text("Nina", exact=True).first).to_be_visible()


def test_an_agent_on_the_dashboard_is_pointed_to_the_console(new_context, tenant):
    from playwright.sync_api import expect

    agent = MembershipFactory(tenant=tenant, role="agent").user
    page = new_context().new_page()
    # Signing in on the dashboard's own form: told where their work is, not "enter the
    # correct username and password for a staff account".
    page.goto("/dashboard/login/")
    page.get_by_label("Username (email)").fill(agent.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    told = page.get_by_text("This is an agent's account: agents answer visitors in the agent")
    expect(told).to_be_visible()
    expect(page.get_by_text("for a staff account")).to_have_count(0)
    assert_accessible(page)
    told.get_by_role("link", name="agent console").click()
    expect(page).to_have_url(re.compile(r"/console/login/$"))
    page.get_by_label("Username (email)").fill(agent.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/$"))

    # The dashboard is not theirs: its sign-in page says where their work is, with a link.
    page.goto("/dashboard/")
    expect(page).to_have_url(re.compile(r"/dashboard/login/"))
    pointer = page.get_by_text("Agents answer visitors in the agent console")
    expect(pointer).to_be_visible()
    assert_accessible(page)
    pointer.get_by_role("link", name="agent console").click()
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.locator("#connection")).to_have_text("Connected")


def test_the_invitations_list_fits_a_laptop_and_says_who_is_listed(new_context, tenant):
    """At 1280 px every column of the Invitations list is in view: its Status column was cut
    off, the table scrolling sideways. The list is of pending invitations (an accepted one
    becomes a staff member): its intro line says so and links to the staff members."""
    from datetime import timedelta

    from django.utils import timezone
    from playwright.sync_api import expect

    owner = MembershipFactory(tenant=tenant, role="owner").user
    InvitationFactory(tenant=tenant, email="maria.fernanda.gonzalezvillanueva@example.com")
    InvitationFactory(tenant=tenant, role="admin", expires_at=timezone.now() - timedelta(days=1))
    page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    sign_in(page, owner.username, "/dashboard/tenancy/invitation/")
    results = page.locator("#changelist .results")
    expect(results.get_by_text("Pending")).to_be_visible()
    assert results.evaluate("r => r.scrollWidth <= r.clientWidth"), "the table scrolls sideways"
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    for header in results.locator("thead th").all():
        box = header.bounding_box()
        assert box and box["x"] + box["width"] <= 1280, header.inner_text()
    intro = page.locator(".ct-list-intro")
    expect(intro).to_contain_text("pending")
    intro.get_by_role("link", name="Staff members").click()
    expect(page).to_have_url(re.compile(r"/dashboard/tenancy/membership/$"))
    assert_accessible(page)
