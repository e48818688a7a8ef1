"""The dashboard's conversations, contacts, leads and channels."""

import json
from datetime import UTC, date, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from bots.models import Bot
from chattonic.core.errors import ServiceError
from chattonic.tenancy.admin import TenantScopedAdmin
from conversations import leads
from conversations.forms import KEY_VALUES_MEDIA, ContactForm, LeadForm
from conversations.models import (
    ChannelKind,
    Contact,
    ContactIdentity,
    Conversation,
    Lead,
    LeadWebhook,
    PrivacyAudit,
)
from conversations.selectors import conversation_transcript
from conversations.stats import stats_dashboard


class SandboxFilter(admin.BooleanFieldListFilter):
    """The filter of test chats, named as the dashboard names them (not "is sandbox")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.title = "test chat"


@admin.register(Conversation)
class ConversationAdmin(TenantScopedAdmin):
    """A conversation's page: what it is (contact, bot, channel, agent, times) above its
    transcript, every message with its sender's name, time and delivery; read-only (a
    conversation is carried on in the agent console). Internal values (the recipient's id on
    the platform, the engine's state) are not shown."""

    list_display = [
        "__str__",
        "bot",
        "channel_kind",
        "status",
        "agent",
        "last_message_at",
    ]
    list_select_related = ["contact", "bot", "assigned_agent"]
    # Dates by the lean filter (today, 7 days, this month...): a date hierarchy reads the
    # months of every conversation of the tenant at each page.
    list_filter = [
        "status",
        "channel_kind",
        "bot",
        ("created_at", admin.DateFieldListFilter),
        ("is_sandbox", SandboxFilter),
    ]
    # Newest first, read from an index; "last message at" sorts on a click.
    ordering = ["-created_at", "-pk"]
    search_fields = ["contact__name", "contact__email", "contact__phone"]
    change_form_template = "admin/conversations/conversation/change_form.html"
    fields = [
        "contact",
        "bot",
        "bot_version",
        "channel_name",
        "status",
        "agent",
        "team",
        "handoff_reason",
        "language_name",
        "is_sandbox",
        "created_at",
        "last_message_at",
        "queued_at",
        "assigned_at",
        "first_agent_response_at",
        "resolved_at",
        "rating",
    ]
    readonly_fields = fields

    @admin.display(description="language")
    def language_name(self, obj):
        return dict(Bot.Language.choices).get(obj.language, obj.language)

    @admin.display(description="satisfaction (CSAT)")
    def rating(self, obj):
        return "-" if obj.csat is None else f"{obj.csat} / 5"

    @admin.display(description="channel")
    def channel_name(self, obj):
        if obj.channel_id:
            return f"{obj.channel.name} ({obj.get_channel_kind_display()})"
        return obj.get_channel_kind_display()

    @admin.display(description="agent", ordering="assigned_agent")
    def agent(self, obj):
        if obj.assigned_agent is None:
            return "-"
        user = obj.assigned_agent
        return user.get_full_name() or user.get_username()

    def has_add_permission(self, request, *args, **kwargs):
        return False  # conversations start at the doors, not in the dashboard

    def has_change_permission(self, request, obj=None):
        return False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["transcript"] = conversation_transcript(conversation=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "stats/",
                self.admin_site.admin_view(lambda request: stats_view(self, request)),
                name="conversations_stats",
            ),
            *super().get_urls(),
        ]


class IdentityInline(admin.TabularInline):
    model = ContactIdentity
    fields = ["kind", "channel", "address", "created_at"]
    readonly_fields = fields
    verbose_name = "identity"
    verbose_name_plural = "where this contact talked to you"
    template = "admin/conversations/contact/identities.html"

    @admin.display(description="address")
    def address(self, obj):
        # A web visitor's id is the widget's random key for a browser: internal, not an address.
        return "a web browser" if obj.kind == ChannelKind.WEBCHAT else obj.external_id

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Contact)
class ContactAdmin(TenantScopedAdmin):
    form = ContactForm
    list_display = ["__str__", "email", "phone", "created_at"]
    search_fields = ["name", "email", "phone"]
    fields = ["name", "email", "phone", "attributes", "merged_into", "created_at", "updated_at"]
    readonly_fields = ["merged_into", "created_at", "updated_at"]
    inlines = [IdentityInline]

    @property
    def media(self):
        return super().media + KEY_VALUES_MEDIA

    actions = ["merge_contacts", "export_contact", "erase_contacts"]

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def get_queryset(self, request):
        # Merged contacts live on in the contact they were merged into.
        return super().get_queryset(request).filter(merged_into__isnull=True)

    def save_model(self, request, obj, form, change):
        from conversations.contacts import contact_update

        if not change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        contact_update(
            contact=obj,
            name=data.get("name"),
            email=data.get("email"),
            phone=data.get("phone"),
            attributes=data.get("attributes"),
        )

    @admin.action(
        description="Merge the selected contacts into the oldest one", permissions=["change"]
    )
    def merge_contacts(self, request, queryset):
        from conversations.contacts import contact_merge

        chosen = list(queryset.order_by("created_at", "pk"))
        if len(chosen) < 2:
            self.message_user(request, "Select two contacts or more to merge.", messages.ERROR)
            return
        target = chosen[0]
        try:
            for source in chosen[1:]:
                target = contact_merge(target=target, source=source)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request, f"Merged {len(chosen) - 1} contact(s) into {target}.", messages.SUCCESS
        )

    @admin.action(description="Export the selected contact's data (JSON)", permissions=["view"])
    def export_contact(self, request, queryset):
        from conversations.privacy import contact_export

        if queryset.count() != 1:
            self.message_user(request, "Select exactly one contact to export.", messages.ERROR)
            return None
        contact = queryset.get()
        data = contact_export(contact=contact, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)
        response = HttpResponse(
            json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
        )
        response["Content-Disposition"] = f'attachment; filename="contact-{contact.pk}.json"'
        return response

    @admin.action(
        description="Erase the selected contacts and their messages", permissions=["delete"]
    )
    def erase_contacts(self, request, queryset):
        from conversations.privacy import contact_erase

        if request.POST.get("post") != "yes":
            return TemplateResponse(
                request,
                "conversations/erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "contacts": list(queryset),
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                    "title": "Erase contacts",
                },
            )
        count = 0
        for contact in list(queryset):
            contact_erase(contact=contact, door=PrivacyAudit.Door.DASHBOARD, actor=request.user)
            count += 1
        self.message_user(
            request,
            f"Erased {count} contact(s): their messages and personal data are gone.",
            messages.SUCCESS,
        )
        return None


@admin.register(Lead)
class LeadAdmin(TenantScopedAdmin):
    list_display = ["id", "contact", "status", "source", "bot", "channel_kind", "created_at"]
    list_filter = ["status", "source", "bot", "channel_kind"]
    search_fields = ["contact__name", "contact__email", "contact__phone"]
    readonly_fields = ["contact", "conversation", "bot", "channel_kind", "source", "created_at"]
    fields = ["status", "fields", *readonly_fields]
    form = LeadForm
    actions = ["export_csv"]
    list_select_related = ["contact", "bot"]

    @property
    def media(self):
        return super().media + KEY_VALUES_MEDIA

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def save_model(self, request, obj, form, change):
        leads.lead_update(
            lead=obj, status=form.cleaned_data["status"], fields=form.cleaned_data["fields"]
        )

    @admin.action(description="Export the selected leads as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        from conversations.leads import leads_csv, leads_for_export

        response = StreamingHttpResponse(
            leads_csv(leads_for_export(queryset)), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response


@admin.register(PrivacyAudit)
class PrivacyAuditAdmin(TenantScopedAdmin):
    list_display = ["created_at", "action", "contact_ref", "door", "actor", "api_key"]
    list_filter = ["action", "door"]
    list_select_related = ["actor", "api_key"]
    readonly_fields = ["action", "contact_ref", "door", "actor", "api_key", "what", "created_at"]
    fields = readonly_fields

    @admin.display(description="what it covered")
    def what(self, obj):
        summary = obj.summary if isinstance(obj.summary, dict) else {}
        return ", ".join(f"{summary[key]} {key}" for key in sorted(summary)) or "-"

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the audit outlives what it records


class LeadWebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = LeadWebhook
        fields = ["url", "is_active"]

    def clean_url(self):
        try:
            return leads.lead_webhook_url_clean(self.cleaned_data["url"])
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(LeadWebhook)
class LeadWebhookAdmin(TenantScopedAdmin):
    form = LeadWebhookForm
    list_display = ["url", "is_active", "last_status", "last_delivery_at"]
    readonly_fields = ["signing_secret", "last_status", "last_delivery_at", "created_at"]
    fields = ["url", "is_active", *readonly_fields]
    actions = ["renew_secret"]

    @admin.display(description="signing secret")
    def signing_secret(self, obj):
        # Shown once, when made; "Issue a new signing secret" replaces a lost one.
        return "stored encrypted; shown once when issued" if obj and obj.pk else "-"

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "is_active"] + (["tenant"] if request.user.is_superuser else [])
        return self.fields

    def create_object(self, request, form):
        webhook, secret = leads.lead_webhook_create(
            tenant=form.instance.tenant,
            url=form.cleaned_data["url"],
            is_active=form.cleaned_data["is_active"],
        )
        self._show_secret(request, secret)
        return webhook

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        leads.lead_webhook_update(
            webhook=obj, url=form.cleaned_data["url"], is_active=form.cleaned_data["is_active"]
        )

    def has_renew_secret_permission(self, request):
        return self.may_write(request)

    @admin.action(
        description="Issue a new signing secret (the old one stops at once)",
        permissions=["renew_secret"],
    )
    def renew_secret(self, request, queryset):
        for webhook in queryset:
            self._show_secret(request, leads.lead_webhook_secret_renew(webhook=webhook), webhook)

    def _show_secret(self, request, secret: str, webhook=None) -> None:
        where = f" of {webhook.url}" if webhook is not None else ""
        self.message_user(
            request,
            f"The signing secret{where} is {secret} — copy it now: it will not be shown "
            "again. Check every lead.created event's X-ChatTonic-Signature with it.",
            messages.WARNING,
        )


# --- The statistics page ----------------------------------------------------------------------


class StatsFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    bot = forms.ModelChoiceField(queryset=None, required=False, empty_label="All bots")
    channel = forms.ChoiceField(
        choices=[("", "All channels"), *ChannelKind.choices], required=False
    )

    def __init__(self, *args, tenant=None, **kwargs):
        super().__init__(*args, **kwargs)
        bots = Bot.objects.all() if tenant is None else Bot.objects.for_tenant(tenant)
        self.fields["bot"].queryset = bots.order_by("name")

    def clean(self):
        data = super().clean()
        today = timezone.now().astimezone(UTC).date()
        data["end"] = data.get("end") or today
        data["start"] = data.get("start") or data["end"] - timedelta(days=29)
        if data["end"] < data["start"]:
            self.add_error("end", "The end is before the start.")
        elif (data["end"] - data["start"]).days >= 366:
            self.add_error("start", "At most 366 days at a time.")
        return data


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def stats_view(model_admin, request):
    """The dashboard's statistics: totals, charts per day (inline SVG), per bot and channel."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        raise PermissionDenied  # operators look at a tenant's numbers through its staff
    # The period shown is in the date inputs, also when none was asked (the last 30 days).
    query = request.GET.copy()
    today = timezone.now().astimezone(UTC).date()
    if not query.get("end"):
        query["end"] = today.isoformat()
    if not query.get("start") and _is_date(query["end"]):
        query["start"] = (date.fromisoformat(query["end"]) - timedelta(days=29)).isoformat()
    form = StatsFilterForm(query, tenant=tenant)
    report, charts = None, {}
    if form.is_valid():
        data = form.cleaned_data
        report, charts = stats_dashboard(
            tenant=tenant,
            start=data["start"],
            end=data["end"],
            bot_id=data["bot"].pk if data.get("bot") else None,
            channel_kind=data.get("channel") or None,
        )
    return TemplateResponse(
        request,
        "conversations/stats.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": "Statistics",
            "form": form,
            "report": report,
            "charts": charts,
        },
    )


# Channels and their delivery log live in their own module (issue 6).
from conversations import channel_admin  # noqa: E402, F401
