"""The Settings → Company page speaks of the staff's company, not of our "tenant"."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

LIST = "/dashboard/tenancy/tenant/"


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&rsaquo;", ">").split())


def _page(client, url: str) -> dict:
    body = client.get(url).content.decode()
    crumbs = body[body.index('class="breadcrumbs">') :]
    main = body[body.index('id="content"') :]
    return {
        "title": _text(re.search(r"<title>(.*?)</title>", body, re.S).group(1)),
        "h1": _text(re.search(r"<h1[^>]*>(.*?)</h1>", body, re.S).group(1)),
        "crumbs": _text(crumbs[len('class="breadcrumbs">') : crumbs.index("</div>")]),
        "main": _text(main),
    }


def test_the_owner_reads_company_in_the_title_and_breadcrumbs(owner_client, tenant):
    """It was "Change tenant", "Home > Tenants > ..." and "1 tenant"."""
    tenant.name, tenant.slug = "Acme", "acme"  # the factory's "Tenant 0" says it too
    tenant.save()
    listed = _page(owner_client, LIST)
    assert listed["h1"] == "Company" and listed["crumbs"] == "Home > Company"
    assert "1 company" in listed["main"]
    changing = _page(owner_client, f"{LIST}{tenant.pk}/change/")
    assert changing["title"].startswith(f"{tenant.name} | Company |")
    assert changing["h1"] == "Company"
    assert changing["crumbs"] == f"Home > Company > {tenant.name}"
    history = _page(owner_client, f"{LIST}{tenant.pk}/history/")
    assert history["crumbs"].startswith(f"Home > Company > {tenant.name}")
    for page in (listed, changing, history):
        assert "tenant" not in (page["title"] + page["h1"] + page["crumbs"]).lower(), page
        assert "tenant" not in page["main"].lower(), page["main"]


def test_operators_still_list_add_and_delete_companies(admin_client, tenant, other_tenant):
    listed = _page(admin_client, LIST)
    assert "2 companies" in listed["main"]
    assert _page(admin_client, f"{LIST}add/")["h1"] == "Add company"
    changing = _page(admin_client, f"{LIST}{tenant.pk}/change/")
    assert changing["h1"] == "Change company"
    assert changing["crumbs"] == f"Home > Company and team > Company > {tenant.name}"
    deleting = _page(admin_client, f"{LIST}{tenant.pk}/delete/")
    assert deleting["crumbs"] == f"Home > Company and team > Company > {tenant.name} > Delete"
