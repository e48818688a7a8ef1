"""The dashboard's forms never show or take another tenant's objects (issue 15, finding 2).

Walked generically over every admin registered on a tenant-aware base: for each add and
change page, every foreign key and many-to-many field is given another tenant's object, in
the URL (``?conversation=<id>``, as a link would prefill it) and in a POST; the pages must not
show any of that tenant's names, emails, phones or titles, and the POST must be refused and
write nothing. Every text of the other tenant's rows is replaced by a unique marker first, so
a leak of any of them shows. Admins and relations added later are covered without editing
this file; a related model without a factory fails here.
"""

from __future__ import annotations

import html
import itertools

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.forms.models import model_to_dict
from django.urls import reverse

from bots.models import Bot
from chattonic.tenancy.admin import TenantAwareAdmin, tenant_bound_form
from chattonic.tenancy.models import Membership, Tenant, TenantOwned
from conversations.models import Conversation
from messaging.models import Channel
from support.models import Ticket
from tests import factories
from tests.chattonic.test_isolation import admin_url, factory_for

pytestmark = pytest.mark.django_db

User = get_user_model()

ADMINS = sorted(
    (
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantAwareAdmin)
    ),
    key=lambda item: item[0]._meta.label,
)


def relations(model) -> list[models.Field]:
    """The model's foreign keys, one-to-ones and many-to-manys."""
    return [f for f in [*model._meta.fields, *model._meta.many_to_many] if f.is_relation]


def one_of(model, tenant):
    """An object of model that belongs to tenant (its member, for users; itself, for it)."""
    if model is Tenant:
        return tenant
    if model is User:
        return factories.MembershipFactory(tenant=tenant, role=Membership.Role.AGENT).user
    assert issubclass(model, TenantOwned), f"{model.__name__}: scope it in scoped_choices"
    return factory_for(model)(tenant=tenant)


def key_of(field, obj) -> str:
    """The value a form posts for obj in field (a foreign key may point at another field)."""
    name = field.remote_field.field_name if not field.many_to_many else "pk"
    return str(getattr(obj, name or "pk"))


def _texts(model) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField)
        and not f.choices
        and not f.primary_key
        and (f.max_length is None or f.max_length >= 12)
    ]


def _rows_of(tenant):
    for model in apps.get_models():
        if issubclass(model, TenantOwned):
            yield model, model._default_manager.filter(tenant=tenant)
        elif model is User:
            yield model, model._default_manager.filter(membership__tenant=tenant)
        elif model is Tenant:
            yield model, model._default_manager.filter(pk=tenant.pk)


_MARKERS = itertools.count()


def owned_by(model, tenant) -> set:
    """The keys of tenant's rows of model."""
    return {
        pk for m, rows in _rows_of(tenant) if m is model for pk in rows.values_list("pk", flat=True)
    }


def mark_every_text(tenant) -> set[str]:
    """Give each text field of each of tenant's rows (its members' included) a unique marker;
    the markers and every row's str() are what must never show to another tenant."""
    secrets: set[str] = set()
    for model, rows in _rows_of(tenant):
        fields = _texts(model)
        for pk in list(rows.values_list("pk", flat=True)):
            changes = {f.attname: f"zqleak{next(_MARKERS):05d}x" for f in fields}
            if changes:
                model._default_manager.filter(pk=pk).update(**changes)
                secrets |= set(changes.values())
    for _, rows in _rows_of(tenant):
        secrets |= {str(row) for row in rows if len(str(row)) >= 6}
    return secrets


def shown(response, secrets: set[str]) -> set[str]:
    body = response.content.decode()
    return {s for s in secrets if s in body or html.escape(s) in body}


def as_posted(response) -> dict:
    """What the page's form would send back as it stands: every field's current value, and
    the management forms of its inlines."""
    data = {}
    forms_on_page = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets") or []:
        forms_on_page.append(inline.formset.management_form)
    for form in forms_on_page:
        for bound in form:
            value = bound.value()
            if value is None or value is False:
                continue
            if value is True:
                data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = str(value)
    return data


def everything(model) -> list[dict]:
    return [model_to_dict(obj) for obj in model._default_manager.order_by("pk")]


@pytest.fixture
def staff_a(client, tenant):
    client.force_login(factories.MembershipFactory(tenant=tenant, role=Membership.Role.OWNER).user)
    return client


def test_the_walk_covers_the_admins_that_have_relations_in_their_forms():
    walked = {model for model, _ in ADMINS}
    assert {Ticket, Channel, factories.AgentProfileFactory._meta.model} <= walked


# Models whose object's page leads to another page (a daily statistics row: the statistics
# page of its day), walked there.
OBJECT_PAGE_REDIRECTS = {"stats.dailystat"}


@pytest.mark.parametrize("model,model_admin", ADMINS, ids=[m._meta.label for m, _ in ADMINS])
def test_no_add_or_change_page_shows_or_takes_another_tenants_objects(
    model, model_admin, staff_a, tenant, other_tenant
):
    theirs = {field.name: one_of(field.related_model, other_tenant) for field in relations(model)}
    prefill = {name: key_of(model._meta.get_field(name), obj) for name, obj in theirs.items()}
    mine = one_of(model, tenant)
    secrets = mark_every_text(other_tenant)

    pages = [admin_url(model, "add"), admin_url(model, "change", mine.pk)]
    for url in pages:
        response = staff_a.get(url, prefill)
        redirected = response.status_code == 302
        if redirected and model._meta.label_lower in OBJECT_PAGE_REDIRECTS:
            url = response["Location"]
            response = staff_a.get(url)
        assert response.status_code in (200, 403), (url, response.status_code)
        assert not shown(response, secrets), (
            f"GET {url} with {prefill} shows {shown(response, secrets)}"
        )
        if response.status_code != 200 or redirected:
            continue
        form = response.context["adminform"].form
        choices = [n for n, f in form.fields.items() if isinstance(f, forms.ModelChoiceField)]
        for name in choices:
            # The URL's value is not kept, and the field offers none of theirs.
            value = form[name].value()
            values = {str(v) for v in (value if isinstance(value, list) else [value])}
            assert prefill.get(name) not in values, (url, name, value)
            offered = set(form.fields[name].queryset.values_list("pk", flat=True))
            assert offered <= owned_by(form.fields[name].queryset.model, tenant), (url, name)
        if not choices:
            continue

        data = as_posted(response)
        for name in choices:
            field = form.fields[name]
            obj = theirs.get(name) or one_of(field.queryset.model, other_tenant)
            key = key_of(model._meta.get_field(name), obj) if name in theirs else str(obj.pk)
            many = isinstance(field, forms.ModelMultipleChoiceField)
            data[name] = [key] if many else key
        secrets = mark_every_text(other_tenant)  # the rows just made, too
        before = everything(model)
        posted = staff_a.post(url, data)
        assert posted.status_code == 200, f"POST {url} with their ids was saved"
        errors = posted.context["adminform"].form.errors
        assert set(choices) <= set(errors), (url, errors)
        assert not shown(posted, secrets), f"POST {url} shows {shown(posted, secrets)}"
        assert everything(model) == before


def test_the_findings_page_labels_no_other_tenants_conversation(staff_a, tenant, other_tenant):
    """``/dashboard/support/ticket/add/?conversation=<id>`` said "Conversation #<id> with
    <their contact's name>" for any tenant's conversation (ids are sequential)."""
    contact = factories.ContactFactory(tenant=other_tenant, name="Zoe Quartermaine")
    theirs = factories.ConversationFactory(tenant=other_tenant, contact=contact)
    page = staff_a.get("/dashboard/support/ticket/add/", {"conversation": theirs.pk})
    assert page.status_code == 200
    assert "Zoe Quartermaine" not in page.content.decode()
    assert f"Conversation #{theirs.pk}" not in page.content.decode()

    mine = factories.ConversationFactory(tenant=tenant, contact__name="Ana Lima")
    page = staff_a.get("/dashboard/support/ticket/add/", {"conversation": mine.pk})
    assert f"Conversation #{mine.pk} with Ana Lima" in page.content.decode()  # still labelled

    report = {"title": "Broken", "description": "x", "severity": "normal"}
    posted = staff_a.post("/dashboard/support/ticket/add/", {**report, "conversation": theirs.pk})
    assert posted.status_code == 200
    assert "Select a valid choice" in str(posted.context["adminform"].form.errors["conversation"])
    assert "Zoe Quartermaine" not in posted.content.decode()
    assert not Ticket.objects.exists()


def test_autocomplete_answers_only_the_tenants_objects(staff_a, tenant, other_tenant):
    """Django's autocomplete view, for every relation of every scoped model: none of another
    tenant's objects comes back, whatever the term."""
    mine = factories.ContactFactory(tenant=tenant, name="Ana Lima")
    secrets = set()
    checked = 0
    for model, _ in ADMINS:
        for field in relations(model):
            if field.many_to_many or field.related_model not in admin.site._registry:
                continue
            theirs = one_of(field.related_model, other_tenant)
            secrets |= mark_every_text(other_tenant)
            response = staff_a.get(
                reverse("admin:autocomplete"),
                {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field.name,
                    "term": "",
                },
            )
            assert response.status_code in (200, 403, 404), (model, field.name)
            assert not shown(response, secrets), (model, field.name)
            if response.status_code == 200:
                checked += 1
                ids = {row["id"] for row in response.json()["results"]}
                assert key_of(field, theirs) not in ids, (model, field.name)
    assert checked  # some relation has an autocomplete (the contact's, at least)
    response = staff_a.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "leads",
            "model_name": "lead",
            "field_name": "contact",
            "term": "Ana",
        },
    )
    assert [row["id"] for row in response.json()["results"]] == [str(mine.pk)]


def test_a_choice_a_form_declares_itself_is_the_tenants_too(tenant, other_tenant):
    """A field declared on a custom form does not pass through formfield_for_foreignkey: the
    tenant-bound form scopes it all the same."""
    mine, theirs = factories.BotFactory(tenant=tenant), factories.BotFactory(tenant=other_tenant)

    class Declared(forms.ModelForm):
        bot = forms.ModelChoiceField(Bot.objects.all())
        also = forms.ModelMultipleChoiceField(Conversation.objects.all(), required=False)

        class Meta:
            model = Channel
            fields = ["name", "kind"]

    form = tenant_bound_form(Declared, tenant)(data={"name": "x", "kind": "api", "bot": theirs.pk})
    assert list(form.fields["bot"].queryset) == [mine]
    assert not form.is_valid() and "bot" in form.errors
    assert "also" in form.fields and not form.fields["also"].queryset.exists()


def test_every_inline_of_a_scoped_admin_is_scoped_too(rf, tenant, other_tenant):
    """Inlines are declared per admin and would not inherit the scoping: TenantScopedAdmin
    mixes it into each of them. (Staff see an inline where they see its parent object,
    without any of Django's model permissions.)"""
    from chattonic.tenancy.admin import TenantScopedAdmin, TenantScopedInline

    request = rf.get("/dashboard/")
    membership = factories.MembershipFactory(tenant=tenant, role=Membership.Role.OWNER)
    request.user = User.objects.get(pk=membership.user.pk)
    assert not request.user.get_all_permissions()
    request.tenant, request.membership = tenant, membership
    inlines = [
        (model, inline)
        for model, model_admin in ADMINS
        if isinstance(model_admin, TenantScopedAdmin)
        for inline in model_admin.get_inlines(request, None)
    ]
    assert inlines  # contacts' identities
    for model, inline_class in inlines:
        assert issubclass(inline_class, TenantScopedInline), inline_class
        inline = inline_class(model, admin.site)
        child = inline.model
        mine, theirs = one_of(child, tenant), one_of(child, other_tenant)
        rows = set(inline.get_queryset(request).values_list("pk", flat=True))
        assert mine.pk in rows and theirs.pk not in rows, child
        for field in relations(child):
            if field.name == "tenant":
                continue
            formfield = (
                inline.formfield_for_manytomany(field, request)
                if field.many_to_many
                else inline.formfield_for_foreignkey(field, request)
            )
            offered = set(formfield.queryset.values_list("pk", flat=True))
            assert offered <= owned_by(field.related_model, tenant), (child, field.name)
