"""The dashboard's channels (webhook URL, set-up steps, credentials) and delivery log.

Imported by conversations/admin.py, so that admin autodiscovery registers them.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from chattonic.tenancy.admin import TenantScopedAdmin
from conversations import channels, delivery
from conversations.credentials import CredentialsUnreadable
from conversations.models import Channel, DeliveryAttempt

SETUP_STEPS = {
    "whatsapp": [
        "In Meta for Developers, open your app → WhatsApp → Configuration.",
        "Callback URL: the webhook URL above; Verify token: the verify_token credential.",
        "Subscribe the webhook to the messages field.",
        "Credentials: access_token (a system user's permanent token), app_secret (App "
        "settings → Basic), verify_token (any string you choose), phone_number_id.",
    ],
    "messenger": [
        "In Meta for Developers, open your app → Messenger → Settings → Webhooks.",
        "Callback URL: the webhook URL above; Verify token: the verify_token credential.",
        "Subscribe the page to messages, messaging_postbacks, message_deliveries and "
        "message_reads.",
        "Credentials: page_access_token, app_secret, verify_token, optional page_id.",
    ],
    "telegram": [
        "Create a bot with @BotFather and copy its token into bot_token.",
        "Choose a secret_token (1-256 characters: A-Z, a-z, 0-9, _ and -).",
        "Call setWebhook with url = the webhook URL above and secret_token = that secret: "
        "https://api.telegram.org/bot<token>/setWebhook?url=…&secret_token=…",
    ],
    "twilio": [
        "In the Twilio console, open your number (or WhatsApp sender) → Messaging.",
        "A message comes in: Webhook, HTTP POST, the webhook URL above.",
        "Credentials: account_sid, auth_token, from_number (E.164, or whatsapp:+… for "
        "WhatsApp); optional messaging_service_sid, sender_mps.",
        "Behind a proxy, PUBLIC_BASE_URL must be the public address: the signature covers it.",
    ],
    "api": [
        "Your system POSTs messages to the webhook URL above with Authorization: Bearer "
        '<API key with the write scope> and a body {"messages": [{"id", "from", "text"}]}.',
        "Replies arrive at webhook_url, signed: X-ChatTonic-Signature = v1=<hex HMAC-SHA256 "
        'of "<X-ChatTonic-Timestamp>.<body>" with signing_secret> (docs/channels.md).',
        "Credentials: signing_secret, webhook_url, optional previous_signing_secret.",
    ],
}


class ChannelForm(forms.ModelForm):
    credentials = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text=(
            "A JSON object of the platform's credentials (see the set-up steps). Stored "
            "encrypted; on a change, keys you leave out or blank keep their stored value."
        ),
    )

    class Meta:
        model = Channel
        fields = ["name", "bot", "kind", "status"]


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "bot", "status", "last_error_at", "webhook"]
    list_filter = ["kind", "status", "bot"]
    search_fields = ["name"]
    readonly_fields = ["webhook", "setup", "stored_credentials", "last_error", "last_error_at"]

    def get_fields(self, request, obj=None):
        if obj is not None:
            return ["name", "bot", "status", "credentials", *self.readonly_fields]
        fields = ["name", "bot", "kind", "status", "credentials"]
        if request.user.is_superuser:
            fields.append("tenant")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    @admin.display(description="webhook URL")
    def webhook(self, obj):
        return channels.webhook_url(obj) if obj and obj.pk else "-"

    @admin.display(description="set-up")
    def setup(self, obj):
        steps = format_html_join("", "<li>{}</li>", ((step,) for step in SETUP_STEPS[obj.kind]))
        return format_html(
            "<p>Webhook URL: <code>{}</code></p><ol>{}</ol>", channels.webhook_url(obj), steps
        )

    @admin.display(description="stored credentials")
    def stored_credentials(self, obj):
        try:
            stored = channels.channel_credentials(obj)
        except CredentialsUnreadable as exc:
            return str(exc)
        return ", ".join(f"{key}: …{str(value)[-4:]}" for key, value in sorted(stored.items()))

    def create_object(self, request, form):
        tenant = form.cleaned_data.get("tenant") if request.user.is_superuser else request.tenant
        given = form.cleaned_data.get("credentials") or {}
        channel = channels.channel_create(
            tenant=tenant or form.instance.tenant,
            bot=form.cleaned_data["bot"],
            kind=form.cleaned_data["kind"],
            name=form.cleaned_data["name"],
            credentials=given,
        )
        if channel.kind == "api" and not given.get("signing_secret"):
            secret = channels.channel_credentials(channel)["signing_secret"]
            self.message_user(
                request,
                f"The channel's signing secret is {secret} — copy it now: it will not be "
                "shown again. Check every event's X-ChatTonic-Signature with it.",
                messages.WARNING,
            )
        return channel

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.cleaned_data.get("credentials"):
            channels.channel_credentials_set(
                channel=obj, credentials=form.cleaned_data["credentials"]
            )


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(TenantScopedAdmin):
    list_display = [
        "started_at",
        "channel",
        "message_link",
        "number",
        "outcome",
        "status_code",
        "platform_code",
        "short_error",
        "message_status",
    ]
    list_filter = ["outcome", "channel"]
    search_fields = ["error", "external_id"]
    readonly_fields = [
        "channel",
        "message",
        "number",
        "outcome",
        "status_code",
        "platform_code",
        "error",
        "external_id",
        "retry_after",
        "started_at",
        "finished_at",
    ]
    fields = readonly_fields
    actions = ["redeliver"]

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="message")
    def message_link(self, obj):
        return f"#{obj.message_id}: {obj.message.text[:40]}"

    @admin.display(description="message status")
    def message_status(self, obj):
        return obj.message.get_status_display()

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:80]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("message", "channel")

    def has_redeliver_permission(self, request):
        return self.may_write(request)

    @admin.action(
        description="Redeliver the failed messages of the selected attempts",
        permissions=["redeliver"],
    )
    def redeliver(self, request, queryset):
        chosen = {attempt.message for attempt in queryset.select_related("message")}
        queued = sum(delivery.message_redeliver(message=message) for message in chosen)
        skipped = len(chosen) - queued
        self.message_user(
            request,
            f"Queued {queued} message(s) for redelivery"
            + (f"; {skipped} not failed, left as they are." if skipped else "."),
            messages.SUCCESS if queued else messages.WARNING,
        )
