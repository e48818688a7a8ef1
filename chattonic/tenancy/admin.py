"""The dashboard's tenant scoping, and the admin of tenants, staff and API keys."""

from __future__ import annotations

from functools import cache

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import RelatedFieldListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import capfirst

from chattonic.core.errors import ServiceError
from chattonic.core.public_urls import public_base_url
from chattonic.tenancy import services
from chattonic.tenancy.models import ApiKey, Invitation, Membership, Tenant, TenantOwned

User = get_user_model()


class TenantAwareAdmin(admin.ModelAdmin):
    """Base of every admin that tenant staff may use: roles, 404s and service errors."""

    #: Only the tenant's owners (not its admins) may add, change or delete.
    owner_only = False
    #: The list's heading, title and last crumb; the model's plural name when empty. Django's
    #: "Select privacy audit to view" named the model, not the page the navigation links.
    list_title = ""

    def is_tenant_staff(self, request) -> bool:
        membership = getattr(request, "membership", None)
        return bool(membership and membership.is_staff_role and request.user.is_active)

    def may_write(self, request) -> bool:
        if request.user.is_superuser:
            return True
        if not self.is_tenant_staff(request):
            return False
        return not self.owner_only or request.membership.role == Membership.Role.OWNER

    def has_module_permission(self, request):
        return request.user.is_superuser or self.is_tenant_staff(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or self.is_tenant_staff(request)

    def has_add_permission(self, request, *args, **kwargs):
        return self.may_write(request)

    def has_change_permission(self, request, obj=None):
        return self.may_write(request)

    def has_delete_permission(self, request, obj=None):
        return self.may_write(request)

    def action_checkbox(self, obj):
        """Django's, written directly: it renders a form widget through the template engine
        for every row, a third of the time of a list page."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" '
            'aria-label="Select this object for an action - {}">',
            ACTION_CHECKBOX_NAME,
            obj.pk,
            str(obj),
        )

    def get_object(self, request, object_id, from_field=None):
        # Missing and another tenant's object look the same: 404, not a redirect.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object.")
        return obj

    def create_object(self, request, form):
        """Create the object through its service and return it; None saves the form."""
        return None

    def save_form(self, request, form, change):
        if not change:
            created = self.create_object(request, form)
            if created is not None:
                form.instance = created
                form.save_m2m = lambda: None
                return created
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if not change and not obj._state.adding:
            return  # created by its service in create_object
        super().save_model(request, obj, form, change)

    def list_name(self) -> str:
        return self.list_title or capfirst(self.model._meta.verbose_name_plural)

    def _with_list_title(self, extra_context):
        # The crumb to the list reads as the list's own title ("Company", not "Companies").
        return {"list_title": self.list_name(), **(extra_context or {})}

    def changelist_view(self, request, extra_context=None):
        title = self.list_name()
        context = {"title": title, "list_title": title, **(extra_context or {})}
        return super().changelist_view(request, context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = self._with_list_title(extra_context)
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        extra_context = self._with_list_title(extra_context)
        try:
            return super().delete_view(request, object_id, extra_context)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def history_view(self, request, object_id, extra_context=None):
        return super().history_view(request, object_id, self._with_list_title(extra_context))


class TenantScopedRelations:
    """Mixin of every admin (and inline) over a tenant's rows: each foreign-key and
    many-to-many form field offers only the staff user's tenant's objects, and a raw-id
    widget labels only those. Superusers (operators) see every tenant."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and not request.user.is_superuser:
            scope_formfield(formfield, request.tenant)
        return formfield

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        if formfield is not None and not request.user.is_superuser:
            scope_formfield(formfield, request.tenant)
        return formfield


class TenantScopedInline(TenantScopedRelations):
    """What TenantScopedAdmin adds to each of its inlines: their rows and their choices are
    the tenant's, and the tenant's staff see them where they may see the parent object.
    (Django's inlines ask for the model permissions of ``auth``, which staff do not hold: an
    owner saw a conversation without its messages.) Writing through an inline is not offered
    to staff: no inline needs it, and each says so with its own permissions."""

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        parent = self.admin_site._registry.get(self.parent_model)
        return parent is not None and parent.has_view_permission(request, obj)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser or not issubclass(self.model, TenantOwned):
            return qs
        return qs.for_tenant(request.tenant) if request.tenant else qs.none()


@cache
def scoped_inline(inline_class):
    """inline_class with TenantScopedInline mixed in (once per class)."""
    if issubclass(inline_class, TenantScopedInline):
        return inline_class
    return type(inline_class.__name__, (TenantScopedInline, inline_class), {})


class TenantScopedAdmin(TenantScopedRelations, TenantAwareAdmin):
    """Admin of a ``TenantOwned`` model: every queryset, choice, filter, action, inline, raw-id
    label, value prefilled from the URL (``?conversation=``) and autocomplete answer is
    limited to the staff user's tenant; superusers (operators) see every tenant.

    Lists stay fast on a tenant with many rows: 25 a page (a screenful), one count (not a
    second one of every row the tenant has), and each related object of a column read in the
    same query (Django joins only the non-null ones by itself: one query a row for the
    others)."""

    list_per_page = 25
    show_full_result_count = False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        if not self.is_tenant_staff(request):
            return qs.none()
        return qs.for_tenant(request.tenant)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and "tenant" not in exclude:
            exclude.append("tenant")
        return exclude

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if request.user.is_superuser and "tenant" not in display:
            display.append("tenant")
        return display

    def get_list_select_related(self, request):
        chosen = super().get_list_select_related(request)
        if chosen is not False:
            return chosen
        related = []
        for name in self.get_list_display(request):
            if isinstance(name, str) and self._is_relation(name):
                field = self.model._meta.get_field(name)
                if field.many_to_one or field.one_to_one:
                    related.append(name)
        return related or False

    def get_list_filter(self, request):
        scoped = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and self._is_relation(item):
                scoped.append((item, TenantRelatedFieldListFilter))
            else:
                scoped.append(item)
        if request.user.is_superuser:
            scoped.append("tenant")
        return scoped

    def _is_relation(self, name: str) -> bool:
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        return field.is_relation

    def get_inlines(self, request, obj):
        return [scoped_inline(inline) for inline in super().get_inlines(request, obj)]

    def get_changeform_initial_data(self, request):
        """The add form's values from the URL, less any relation to an object that is not
        the tenant's (it would be refused on saving anyway: prefill nothing)."""
        initial = super().get_changeform_initial_data(request)
        if request.user.is_superuser:
            return initial
        for name, value in list(initial.items()):
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if field.is_relation and field.concrete and not _all_chosen(field, value, request):
                del initial[name]
        return initial

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser:
            return form
        return tenant_bound_form(form, request.tenant)


class TenantRelatedFieldListFilter(RelatedFieldListFilter):
    """A list's filter by a related object: the tenant's objects of that kind (its bots, its
    channels, its teams), read from their own small table. (Django's "related only" filter
    reads every row of the list, every conversation of the tenant, for the ones in use.)"""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        related = field.related_model._default_manager.all()
        if not request.user.is_superuser:
            related = scoped_choices(related, getattr(request, "tenant", None))
        if ordering:
            related = related.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in related]


def _all_chosen(field, value, request) -> bool:
    """Whether value (one key, or a list for a many-to-many) names only objects that the
    tenant's staff may choose for field."""
    values = value if isinstance(value, list) else [value]
    key = field.remote_field.field_name if field.many_to_one or field.one_to_one else "pk"
    allowed = scoped_choices(field.related_model._default_manager.all(), request.tenant)
    try:
        return allowed.filter(**{f"{key}__in": values}).count() == len(set(values))
    except (TypeError, ValueError, ValidationError):
        return False


def scoped_choices(queryset, tenant):
    """The part of queryset (of any model) that a tenant's staff may choose. A model the
    tenancy does not know offers nothing: a new relation must be scoped here on purpose."""
    model = queryset.model
    if tenant is None:
        return queryset.none()
    if issubclass(model, TenantOwned):
        return queryset.filter(tenant=tenant)
    if model is Tenant:
        return queryset.filter(pk=tenant.pk)
    if model is User:
        return queryset.filter(membership__tenant=tenant)
    return queryset.none()


class TenantRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id widget, labelling its value only when the field may choose it. Django's
    looks any id up through the default manager: "Conversation #1 with <another tenant's
    contact>" for ``?conversation=1``."""

    def __init__(self, rel, admin_site, attrs=None, using=None, *, queryset):
        super().__init__(rel, admin_site, attrs, using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            chosen = self.queryset.filter(**{key: value}).exists()
        except (TypeError, ValueError, ValidationError):
            chosen = False
        return super().label_and_url_for_value(value) if chosen else ("", "")


_UNSCOPED = object()


def scope_formfield(formfield, tenant) -> None:
    """Limit a model choice field (and its raw-id widget's label) to the tenant's objects."""
    if not isinstance(formfield, forms.ModelChoiceField):  # includes the multiple choice one
        return
    if getattr(formfield, "scoped_to", _UNSCOPED) == tenant:
        return  # already scoped: by formfield_for_foreignkey, then again by the form
    formfield.queryset = scoped_choices(formfield.queryset, tenant)
    formfield.scoped_to = tenant
    widget = formfield.widget
    if isinstance(widget, TenantRawIdWidget):
        widget.queryset = formfield.queryset
    elif type(widget) is ForeignKeyRawIdWidget:  # the many-to-many one shows no label
        formfield.widget = TenantRawIdWidget(
            widget.rel, widget.admin_site, widget.attrs, widget.db, queryset=formfield.queryset
        )


class TenantAutocompleteJsonView(AutocompleteJsonView):
    """The dashboard's autocomplete answers: for tenant staff, only their tenant's objects,
    and only for a field of a model whose admin they may view."""

    def has_perm(self, request, obj=None):
        if not super().has_perm(request, obj):
            return False
        if request.user.is_superuser:
            return True
        source = self.admin_site._registry.get(self.source_field.model)
        return source is not None and source.has_view_permission(request)

    def get_queryset(self):
        qs = super().get_queryset()
        if self.request.user.is_superuser:
            return qs
        return scoped_choices(qs, getattr(self.request, "tenant", None))


def tenant_bound_form(form_class, tenant):
    """A form whose instance belongs to ``tenant`` before validation, so that unique
    constraints that include the tenant are checked as form errors; and whose every model
    choice, those the form declares itself included, is the tenant's."""

    class TenantBoundForm(form_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.instance.tenant_id is None:
                self.instance.tenant = tenant
            for field in self.fields.values():
                scope_formfield(field, tenant)

        def _get_validation_exclusions(self):
            exclude = super()._get_validation_exclusions()
            exclude.discard("tenant")
            return exclude

    TenantBoundForm.__name__ = form_class.__name__
    return TenantBoundForm


# --- Tenants --------------------------------------------------------------------------------


class TenantCreateForm(forms.ModelForm):
    owner_email = forms.EmailField(
        help_text="The owner gets an invitation by email to choose a name and a password."
    )

    class Meta:
        model = Tenant
        fields = ["name", "slug"]


@admin.register(Tenant)
class TenantAdmin(TenantAwareAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    owner_only = True

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        if not self.is_tenant_staff(request):
            return qs.none()
        return qs.filter(pk=request.tenant.pk)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["created_at"] if request.user.is_superuser else ["slug", "created_at"]

    def get_exclude(self, request, obj=None):
        # Who is alerted in Trello is the platform's own arrangement: operators set it.
        if request.user.is_superuser:
            return super().get_exclude(request, obj)
        return ["trello_developer_id", "trello_coordinator_id"]

    def has_add_permission(self, request, *args, **kwargs):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id is not None and not request.user.is_superuser:
            # Its staff have one company: its page is "Company", as the navigation names it
            # ("Change company" read as switching to another one).
            extra_context = {"title": "Company", **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def create_object(self, request, form):
        # The owner gets an invitation by email (tenant_create sends it).
        return services.tenant_create(
            name=form.cleaned_data["name"],
            slug=form.cleaned_data["slug"],
            owner_email=form.cleaned_data["owner_email"],
            base_url=public_base_url(request),
        )


# --- Staff ----------------------------------------------------------------------------------


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    """The tenant's staff. People join through invitations (below), not by adding a row."""

    list_display = ["user", "role", "joined"]
    list_filter = ["role"]
    list_select_related = ["user"]
    search_fields = ["user__email", "user__username"]
    owner_only = True
    form = MembershipForm
    fields = ["role"]

    @admin.display(description="joined", ordering="created_at")
    def joined(self, obj):
        return obj.created_at

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def save_model(self, request, obj, form, change):
        services.membership_change_role(membership=obj, role=form.cleaned_data["role"])

    def delete_model(self, request, obj):
        services.membership_remove(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            services.membership_remove(membership=membership)


class InvitationForm(forms.ModelForm):
    email = forms.EmailField(help_text="We email them a link to choose their name and password.")

    class Meta:
        model = Invitation
        fields = ["email", "role"]

    def validate_unique(self):
        pass  # inviting a pending address again sends a new link (invitation_create)


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite staff; pending invitations can be sent again or withdrawn. An accepted one is
    used up (its link must not work twice): the person is then a staff member."""

    # Two dates and a status were wider than a laptop's list (Status scrolled out of view):
    # the sending day, and the expiry told within the status.
    list_display = ["email", "role", "sent", "status"]
    list_filter = ["role"]
    search_fields = ["email"]
    readonly_fields = ["email", "role", "invited_by", "sent_at", "expires_at"]
    actions = ["resend"]
    owner_only = True

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, obj):
        return date_format(timezone.localtime(obj.sent_at), "DATE_FORMAT")

    @admin.display(description="status", ordering="expires_at")
    def status(self, obj):
        day = date_format(timezone.localtime(obj.expires_at), "DATE_FORMAT")
        return f"Expired on {day}" if obj.is_expired else f"Pending until {day}"

    def changelist_view(self, request, extra_context=None):
        intro = format_html(
            "The invitations still pending. Once someone accepts theirs, it leaves this list "
            'and they are listed under <a href="{}">Staff members</a>.',
            reverse("admin:tenancy_membership_changelist"),
        )
        return super().changelist_view(request, {"list_intro": intro, **(extra_context or {})})

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = InvitationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["email", "role"] + (["tenant"] if request.user.is_superuser else [])
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def has_change_permission(self, request, obj=None):
        return False  # an invitation is sent again or withdrawn, not edited

    def create_object(self, request, form):
        invitation = services.invitation_create(
            tenant=form.instance.tenant,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
            base_url=public_base_url(request),
        )
        self.message_user(request, f"Invitation sent to {invitation.email}.", messages.SUCCESS)
        return invitation

    def response_add(self, request, obj, post_url_continue=None):
        # One message for every address (create_object's), whoever it may belong to.
        return HttpResponseRedirect(request.path.removesuffix("add/"))

    def delete_model(self, request, obj):
        services.invitation_revoke(invitation=obj)

    def delete_queryset(self, request, queryset):
        for invitation in queryset:
            services.invitation_revoke(invitation=invitation)

    @admin.action(description="Send the selected invitations again", permissions=["add"])
    def resend(self, request, queryset):
        for invitation in queryset:
            services.invitation_resend(invitation=invitation, base_url=public_base_url(request))
        self.message_user(
            request, f"Sent {queryset.count()} invitation(s) again.", messages.SUCCESS
        )


# --- API keys -------------------------------------------------------------------------------


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        # A key that can do nothing is refused: a new one starts with the least it needs to
        # be of use (reading), as Intercom's do, and the form says so.
        initial=[ApiKey.Scope.READ],
        help_text="Read is ticked to start with: a new key can read (GET requests) and change "
        "nothing. Tick write to let it also make changes, admin to let it also manage keys "
        "and settings.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = ["name", "masked", "scope_list", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = [
        "masked",
        "scope_list",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_select_related = ["created_by"]
    actions = ["revoke"]
    owner_only = True

    @admin.display(description="scopes")
    def scope_list(self, obj):
        # In words, not the stored JSON list.
        labels = dict(ApiKey.Scope.choices)
        return ", ".join(str(labels.get(scope, scope)) for scope in obj.scopes or []) or "-"

    @admin.display(description="key")
    def masked(self, obj):
        return f"ct_{obj.prefix}_…"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes"] + (["tenant"] if request.user.is_superuser else [])
        return ["name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, not deleted: their record stays

    def create_object(self, request, form):
        api_key, full_key = services.api_key_create(
            tenant=form.instance.tenant,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
        )
        self.message_user(
            request,
            f"Your new API key is {full_key} — copy it now: it will not be shown again.",
            messages.WARNING,
        )
        return api_key

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} API key(s).", messages.SUCCESS)
