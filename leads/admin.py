"""The dashboard's leads and lead webhooks."""

from django import forms
from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.utils import timezone

from chattonic.core.errors import ServiceError
from chattonic.tenancy.admin import TenantScopedAdmin
from contacts.forms import KEY_VALUES_MEDIA
from leads import services as leads
from leads.forms import LeadForm
from leads.models import Lead, LeadWebhook


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
        from leads.services import leads_csv

        response = StreamingHttpResponse(leads_csv(queryset), content_type="text/csv")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response


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
