"""Tenant isolation, walked generically: every tenant-owned model in the dashboard and
every REST endpoint, as tenant A against tenant B's objects. Models and endpoints added
later are covered without editing this file; a model without a factory fails here."""

from __future__ import annotations

import re

import factory
import pytest
from django.contrib import admin
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from chattonic.admin_site import OperatorsOnly
from chattonic.tenancy.admin import TenantScopedAdmin
from chattonic.tenancy.models import Membership, Tenant, TenantOwned
from chattonic.tenancy.services import api_key_create
from stats.models import DailyStat
from tests import factories
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def factory_for(model):
    for value in vars(factories).values():
        if (
            isinstance(value, type)
            and issubclass(value, factory.django.DjangoModelFactory)
            and value._meta.model is model
        ):
            return value
    pytest.fail(f"tests/factories.py has no factory for {model.__name__}: add one")


def snapshot(obj):
    fresh = type(obj)._default_manager.get(pk=obj.pk)
    return model_to_dict(fresh)


SCOPED = sorted(
    (
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantScopedAdmin)
    ),
    key=lambda item: item[0]._meta.label,
)
OPERATORS_ONLY = sorted(
    (
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, OperatorsOnly)
    ),
    key=lambda model: model._meta.label,
)


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff_a(client, tenant):
    user = factories.MembershipFactory(tenant=tenant, role=Membership.Role.OWNER).user
    client.force_login(user)
    return client


def test_every_registered_model_is_either_tenant_scoped_or_for_operators():
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, TenantScopedAdmin | OperatorsOnly) or model is Tenant, (
            f"{model.__name__}'s admin is neither tenant-scoped nor operators-only"
        )
        if issubclass(model, TenantOwned):
            assert isinstance(model_admin, TenantScopedAdmin), model


def test_the_walk_covers_the_tenancy_models():
    assert {Membership, factories.ApiKeyFactory._meta.model} <= {m for m, _ in SCOPED}


@pytest.mark.parametrize("model,model_admin", SCOPED, ids=[m._meta.label for m, _ in SCOPED])
def test_dashboard_hides_other_tenants_objects(model, model_admin, staff_a, other_tenant):
    theirs = factory_for(model)(tenant=other_tenant)
    before = snapshot(theirs)
    count_before = model._default_manager.filter(tenant=other_tenant).count()

    changelist = staff_a.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    if model is DailyStat:  # the statistics page: the tenant's numbers, not a list of rows
        assert changelist.context["report"]["totals"]["conversations"] == 0
    else:
        assert theirs.pk not in {obj.pk for obj in changelist.context["cl"].result_list}

    for view in ("change", "delete", "history"):
        url = admin_url(model, view, theirs.pk)
        assert staff_a.get(url).status_code == 404, f"GET {view} of another tenant's object"
    change_post = staff_a.post(admin_url(model, "change", theirs.pk), {"name": "hijacked"})
    assert change_post.status_code == 404
    delete_post = staff_a.post(admin_url(model, "delete", theirs.pk), {"post": "yes"})
    assert delete_post.status_code == 404

    request = changelist.wsgi_request
    for action in model_admin.get_actions(request):
        staff_a.post(
            admin_url(model, "changelist"),
            {"action": action, "_selected_action": [theirs.pk], "post": "yes"},
        )

    assert model._default_manager.filter(tenant=other_tenant).count() == count_before
    assert snapshot(theirs) == before


def test_dashboard_hides_other_tenants(staff_a, tenant, other_tenant):
    changelist = staff_a.get(admin_url(Tenant, "changelist"))
    assert [t.pk for t in changelist.context["cl"].result_list] == [tenant.pk]
    assert staff_a.get(admin_url(Tenant, "change", other_tenant.pk)).status_code == 404
    assert (
        staff_a.post(admin_url(Tenant, "change", other_tenant.pk), {"name": "x"}).status_code == 404
    )
    other_tenant.refresh_from_db()
    assert other_tenant.name != "x"


@pytest.mark.parametrize("model", OPERATORS_ONLY, ids=[m._meta.label for m in OPERATORS_ONLY])
def test_operator_models_are_closed_to_tenant_staff(model, staff_a):
    assert staff_a.get(admin_url(model, "changelist")).status_code == 403


# --- The REST API ---------------------------------------------------------------------------


def api_routes():
    """(path template, view class, model) of every /api/v1/ route."""
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                path = prefix + str(entry.pattern)
                view = getattr(entry.callback, "cls", None)
                if path.startswith("api/v1/") and view is not None:
                    queryset = getattr(view, "queryset", None)
                    routes.append(
                        (path, entry.callback, queryset.model if queryset is not None else None)
                    )

    walk(get_resolver().url_patterns, "")
    return routes


ROUTES = api_routes()
KWARG = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>|\(\?P<(?P<rname>[^>]+)>[^)]*\)")


def fill(path: str, values: dict[str, object]) -> str | None:
    def sub(match):
        name = match.group("name") or match.group("rname")
        if name not in values:
            raise KeyError(name)
        return str(values[name])

    try:
        filled = KWARG.sub(sub, path)
    except KeyError:
        return None
    return "/" + filled.replace("^", "").replace("$", "").replace("\\.", ".")


def view_class(callback):
    return getattr(callback, "cls", None)


def tenant_owned_models():
    from django.apps import apps

    return {m._meta.model_name: m for m in apps.get_models() if issubclass(m, TenantOwned)}


@pytest.fixture
def api_a(tenant):
    return api_client_for(api_key_create(tenant=tenant, name="a", scopes=["admin"]))


def test_the_api_walk_finds_routes():
    assert any(path.startswith("api/v1/tenant") for path, _, _ in ROUTES)


def test_api_hides_other_tenants_objects(api_a, tenant, other_tenant):
    models_by_name = tenant_owned_models()
    theirs_by_model = {}

    def theirs(model):
        if model not in theirs_by_model:
            theirs_by_model[model] = factory_for(model)(tenant=other_tenant)
        return theirs_by_model[model]

    for path, callback, model in ROUTES:
        if model is None or not issubclass(model, TenantOwned):
            continue
        obj = theirs(model)
        view = view_class(callback)
        lookup = getattr(view, "lookup_field", "pk")
        kwarg = getattr(view, "lookup_url_kwarg", None) or lookup
        values = {"pk": obj.pk, "id": obj.pk, kwarg: getattr(obj, lookup)}
        for name, parent_model in models_by_name.items():
            # A nested route names its parent: the object's own parent when it has one.
            parent_id = getattr(obj, f"{name}_id", None)
            if parent_id is None:
                parent_id = (theirs(parent_model) if parent_model is not model else obj).pk
            values.setdefault(f"{name}_pk", parent_id)
        url = fill(path, values)
        assert url is not None, f"cannot fill the URL arguments of {path}"
        is_detail = "<" in path or "(?P<" in path
        before = {m: snapshot(o) for m, o in theirs_by_model.items()}
        if not is_detail:
            listing = api_a.get(url)
            if listing.status_code == 200:
                results = listing.json()
                results = results.get("results", results) if isinstance(results, dict) else results
                assert obj.pk not in {row.get("id") for row in results if isinstance(row, dict)}, (
                    url
                )
            continue
        for method in ("get", "put", "patch", "delete", "post"):
            response = getattr(api_a, method)(url, {}, format="json")
            if response.status_code == 405:
                continue
            assert response.status_code == 404, f"{method.upper()} {url}: {response.status_code}"
            assert response.json()["error"]["code"] == "not_found"
        assert {m: snapshot(o) for m, o in theirs_by_model.items()} == before, url
