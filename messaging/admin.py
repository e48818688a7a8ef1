"""The dashboard's channels (webhook URL, set-up steps, credentials: an input each) and
delivery log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core import signing
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import conditional_escape, format_html, format_html_join

from chattonic.core.credentials import CredentialsUnreadable
from chattonic.core.errors import ValidationFailed
from chattonic.tenancy.admin import TenantScopedAdmin
from conversations.models import ChannelKind
from messaging import delivery
from messaging import services as messaging
from messaging.connectors import CONNECTORS, get_connector
from messaging.models import Channel, DeliveryAttempt

# What each credential is called in the form and where the platform shows it (docs/channels.md
# has the same, with more words).
CREDENTIAL_FIELDS: dict[str, tuple[str, str]] = {
    "access_token": (
        "Access token",
        "A system user's permanent token with whatsapp_business_messaging (Business Settings "
        "→ System users); the API setup page's temporary tokens expire after 24 hours.",
    ),
    "app_secret": ("App secret", "App dashboard → App settings → Basic. It signs every webhook."),
    "verify_token": (
        "Verify token",
        "Any random text you choose; type the same text into Meta with the webhook URL.",
    ),
    "phone_number_id": (
        "Phone number ID",
        "App dashboard → WhatsApp → API Setup → Phone number ID (not the number itself).",
    ),
    "throughput": (
        "Throughput",
        "Messages per second of your number: leave empty for 80 unless Meta raised it "
        "(up to 1,000).",
    ),
    "list_button": ("List button", "The label of the button that opens a list of options."),
    "page_access_token": (
        "Page access token",
        "Messenger API Settings → Generate access token for your Page (pages_messaging).",
    ),
    "page_id": ("Page ID", "Your Page's ID, to keep to the Page's sending limit."),
    "bot_token": ("Bot token", "The token @BotFather gave you, like 123456789:AAH…"),
    "secret_token": (
        "Secret token",
        "1-256 characters of A-Z, a-z, 0-9, _ and -, of your choosing: Telegram sends it "
        "with every update.",
    ),
    "account_sid": ("Account SID", "Twilio Console → Account info (AC…)."),
    "auth_token": ("Auth token", "Twilio Console → Account info. It signs every webhook."),
    "from_number": (
        "From number",
        "Your Twilio number in E.164 (+14155550100), or whatsapp:+14155238886 for a "
        "WhatsApp sender.",
    ),
    "messaging_service_sid": (
        "Messaging Service SID",
        "MG…: send through a Messaging Service (a pool of numbers) instead of one number.",
    ),
    "sender_mps": (
        "Sender messages per second",
        "Leave empty for 1 (a US long code) or 80 (WhatsApp); 3 for toll-free, 100 for a "
        "short code.",
    ),
    "webhook_shared_key": (
        "Webhook shared key",
        "Only when a Twilio Webhooks Rule signs your webhooks with a SharedKey.",
    ),
    "webhook_url": (
        "Webhook URL",
        "Your HTTPS endpoint that receives the bot's replies and events, reachable from the "
        "internet.",
    ),
    "signing_secret": (
        "Signing secret",
        "Leave empty and we choose one, shown once when the channel is saved. We sign every "
        "event with it.",
    ),
    "previous_signing_secret": (
        "Previous signing secret",
        "While you move your endpoint to a new signing secret, events are signed with both.",
    ),
}

SETUP_STEPS = {
    "whatsapp": [
        "Fill in the access token, app secret and phone number ID from your app below, choose "
        "a verify token, and save.",
        "In Meta for Developers, open your app → WhatsApp → Configuration → Webhook → Edit.",
        "Callback URL: the webhook URL; Verify token: the same text as below. Verify and save "
        "(Meta calls the URL then: it answers once this channel is saved).",
        "Under Webhook fields, subscribe to messages.",
    ],
    "messenger": [
        "Fill in the page access token and the app secret below, choose a verify token, and save.",
        "In Meta for Developers, open your app → Messenger → Messenger API Settings → "
        "Configure webhooks.",
        "Callback URL: the webhook URL; Verify token: the same text as below. Verify and save "
        "(Meta calls the URL then: it answers once this channel is saved).",
        "Subscribe the page to messages, messaging_postbacks, message_deliveries and "
        "message_reads.",
    ],
    "telegram": [
        "Create a bot with @BotFather and copy its token into Bot token below.",
        "Choose a secret token (1-256 characters: A-Z, a-z, 0-9, _ and -).",
        "Save: Chat-Tonic registers the webhook URL and the secret token with Telegram "
        "(setWebhook), so Telegram sends the bot's messages here. If Telegram refuses them "
        "or cannot be reached, this page says why and nothing is saved.",
    ],
    "twilio": [
        "In the Twilio console, open your number (or WhatsApp sender) → Messaging.",
        "A message comes in: Webhook, HTTP POST, the webhook URL exactly as shown (Twilio "
        "signs the URL it calls).",
        "Fill in the account SID, auth token and from number below.",
    ],
    "api": [
        "Your system POSTs messages to the webhook URL with Authorization: Bearer <API key "
        'with the write scope> and a body {"messages": [{"id", "from", "text"}]}.',
        "Replies go to your webhook URL below, signed: X-ChatTonic-Signature = v1=<hex "
        'HMAC-SHA256 of "<X-ChatTonic-Timestamp>.<body>" with the signing secret> '
        "(docs/channels.md).",
    ],
}

# The kinds a tenant connects here (the web chat needs no channel: the bot's embed code).
KINDS = [kind for kind in SETUP_STEPS if kind in CONNECTORS]


def field_name(kind: str, key: str) -> str:
    return f"{kind}__{key}"


def clear_name(kind: str, key: str) -> str:
    return f"{kind}__{key}__clear"


def _is_secret(kind: str, key: str) -> bool:
    return key in get_connector(kind).secret_credentials


def _keys(kind: str) -> list[str]:
    connector = get_connector(kind)
    return [*connector.required_credentials, *connector.optional_credentials]


def _removable(kind: str, key: str, stored: dict) -> bool:
    """An optional secret that is stored: it gets a "Remove" box (empty keeps it)."""
    return (
        _is_secret(kind, key)
        and bool(stored.get(key))
        and key not in get_connector(kind).required_credentials
    )


def credential_field_names(kind: str, stored: dict) -> list[str]:
    """The names of the inputs of ``kind``'s credentials, in order."""
    names = []
    for key in _keys(kind):
        names.append(field_name(kind, key))
        if _removable(kind, key, stored):
            names.append(clear_name(kind, key))
    return names


def stored_credentials(channel: Channel | None) -> dict:
    """The channel's stored credentials; none when it is new, or when they no longer decrypt
    (the key was changed without keeping the old one: they are typed in again)."""
    if channel is None or not channel.pk:
        return {}
    try:
        return messaging.channel_credentials(channel)
    except CredentialsUnreadable:
        return {}


def _stored_hint(value: str) -> str:
    # The end of a long secret helps tell two apart; a short one would be given away whole.
    end = f" (ends in …{value[-4:]})" if len(value) >= 16 else ""
    return f"A value is stored{end}: leave this empty to keep it."


# The add page's webhook URL names the channel's id before the channel exists: the id is
# reserved when the page is made (``messaging.channel_id_reserve``) and travels, signed, in a
# hidden input, so that the channel saved is the one whose URL was shown (and perhaps already
# given to the platform), even after the form is shown again with an error.
RESERVATION = "webhook_reservation"
_RESERVATION_SALT = "conversations.channel-id"


def reservation_sign(channel_id: int) -> str:
    return signing.dumps(channel_id, salt=_RESERVATION_SALT)


def reservation_read(value: str | None) -> int | None:
    """The channel id a signed reservation names, or None (missing, altered)."""
    try:
        channel_id = signing.loads(value or "", salt=_RESERVATION_SALT)
    except signing.BadSignature:
        return None
    return channel_id if isinstance(channel_id, int) and not isinstance(channel_id, bool) else None


class ChannelForm(forms.ModelForm):
    """A channel's name, bot and kind, and the credentials of its kind, each in its own input.

    The add page holds every kind's inputs, in a group per kind (the script shows the chosen
    kind's group only). Secrets are never sent back to the browser: a stored one is kept when
    its input is left empty, and an optional one can be removed. The credentials are checked
    by the service's own rules (``messaging.channel_credentials_check``) when the form is
    validated, so a refusal shows beside its input and the rest of the form stays as typed.
    """

    use_required_attribute = False  # the other kinds' inputs are on the add page too
    # The add page's channel id (ChannelAdmin.get_form sets it): its webhook URL is shown.
    reserved_id: int | None = None
    # Why the posted reservation was replaced by a new one (then the form is shown again).
    reservation_problem: str | None = None
    # The request (ChannelAdmin.get_form sets it): the webhook URL, when the form registers
    # it with the platform, is on the address the dashboard was asked on, as shown.
    request = None

    class Meta:
        model = Channel
        fields = ["name", "bot", "kind", "status"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "kind" in self.fields:
            self.fields["kind"].choices = [("", "Choose a platform")] + [
                (value, label) for value, label in ChannelKind.choices if value in KINDS
            ]
            self.fields["kind"].help_text = (
                "The platform: its set-up steps and credentials show below. The web chat "
                "needs no channel (the bot's page has its embed code)."
            )
        if not self.instance.pk and self.reserved_id is not None:
            self.fields[RESERVATION] = forms.CharField(
                widget=forms.HiddenInput, required=False, initial=reservation_sign(self.reserved_id)
            )
            if self.is_bound and reservation_read(self.data.get(RESERVATION)) != self.reserved_id:
                # Shown again with the new reservation, not the one posted.
                self.data = self.data.copy()
                self.data[RESERVATION] = reservation_sign(self.reserved_id)
        self.stored = stored_credentials(self.instance)
        posted_kind = self.instance.kind if self.instance.pk else self.data.get("kind")
        for kind in self.kinds():
            connector = get_connector(kind)
            for key in _keys(kind):
                label, help_text = CREDENTIAL_FIELDS[key]
                secret = _is_secret(kind, key)
                stored = str(self.stored.get(key) or "")
                if secret and stored:
                    help_text = f"{help_text} {_stored_hint(stored)}"
                required = key in connector.required_credentials and not (secret and stored)
                if kind == ChannelKind.API and key == "signing_secret":
                    required = False  # we choose one when it is left empty
                if self.is_bound and kind != posted_kind:
                    required = False  # another kind's inputs: not this channel's
                if secret:
                    widget = forms.PasswordInput(
                        render_value=False, attrs={"autocomplete": "new-password"}
                    )
                else:
                    widget = forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
                self.fields[field_name(kind, key)] = forms.CharField(
                    label=label,
                    help_text=conditional_escape(help_text),  # the admin shows help as HTML
                    required=required,
                    max_length=2000,
                    widget=widget,
                    initial=None if secret else self.stored.get(key),
                )
                if _removable(kind, key, self.stored):
                    self.fields[clear_name(kind, key)] = forms.BooleanField(
                        label=f"Remove the stored {label.lower()}", required=False
                    )

    def kinds(self) -> list[str]:
        """The kinds whose inputs the form holds: the channel's own once it exists."""
        return [self.instance.kind] if self.instance.pk else KINDS

    def chosen_kind(self) -> str | None:
        if self.instance.pk:
            return self.instance.kind
        return self.cleaned_data.get("kind")

    def credentials(self) -> dict:
        """The credentials to store, from the chosen kind's inputs and what is stored: an empty
        secret keeps its stored value (unless removed), an empty other value is dropped."""
        kind = self.chosen_kind()
        result = {}
        for key in _keys(kind):
            value = (self.cleaned_data.get(field_name(kind, key)) or "").strip()
            if value:
                result[key] = value
            elif (
                _is_secret(kind, key)
                and self.stored.get(key)
                and not self.cleaned_data.get(clear_name(kind, key))
            ):
                result[key] = self.stored[key]
        return result

    def clean(self):
        data = super().clean()
        if self.reservation_problem:
            raise forms.ValidationError(self.reservation_problem)
        kind = self.chosen_kind()
        if kind not in KINDS:
            return data  # the kind's own error says so
        try:
            messaging.channel_credentials_check(
                kind=kind, credentials=self.credentials(), creating=not self.instance.pk
            )
            if not self.errors and (not self.instance.pk or self.credentials() != self.stored):
                # A new channel, or new credentials: where we register the webhook with the
                # platform (Telegram), done now; a refusal saves nothing and says why.
                channel_id = self.instance.pk or self.reserved_id
                if channel_id is not None:
                    messaging.channel_webhook_register(
                        kind=kind,
                        credentials=self.credentials(),
                        url=messaging.webhook_url_for(kind, channel_id, self.request),
                    )
        except ValidationFailed as exc:
            placed = False
            for name, problems in (exc.fields or {}).items():
                input_name = field_name(kind, name.removeprefix("credentials."))
                if input_name in self.fields:
                    placed = True
                    if input_name not in self.errors:  # "required" said it already
                        for problem in problems:
                            self.add_error(input_name, problem)
            if not placed:
                raise forms.ValidationError(exc.message) from None
        return data


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    """A channel's page: its name, bot and kind, the set-up steps and webhook URL of its kind
    (on the add page too, whole: the channel's id is reserved when the page is made and the
    channel is saved under it),
    and its kind's credentials as separate inputs. Then its last error."""

    form = ChannelForm
    list_display = ["name", "kind", "bot", "status", "last_error_at"]
    list_filter = ["kind", "status", "bot"]
    search_fields = ["name"]
    readonly_fields = ["last_error", "last_error_at"]

    class Media:
        css = {"all": ["bots/dashboard.css", "messaging/channels.css"]}
        js = ["bots/dashboard.js", "messaging/channels.js"]

    def _model_fields(self, request, obj) -> list[str]:
        if obj is not None:
            return ["name", "bot", "status"]
        # A new channel is active; its page can disable it.
        return ["name", "bot", "kind"] + (["tenant"] if request.user.is_superuser else [])

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The model's fields; the credential inputs are the form's own, made per kind.
        kwargs["fields"] = self._model_fields(request, obj)
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            return type(form.__name__, (form,), {"request": request})
        channel_id, problem = self._reservation(request)
        return type(
            form.__name__,
            (form,),
            {"reserved_id": channel_id, "reservation_problem": problem, "request": request},
        )

    def _reservation(self, request) -> tuple[int, str | None]:
        """The add page's channel id: the one its form posted back, else a new one (and why
        the posted one was not kept). Once per request: the fieldsets' URL and the form agree.
        A form posted without one (made before the page showed the URL) gets a new id."""
        if not hasattr(request, "_ct_channel_reservation"):
            posted = request.POST.get(RESERVATION) if request.method == "POST" else None
            channel_id, problem = reservation_read(posted), None
            if posted and channel_id is None:
                problem = (
                    "This page's webhook URL could not be confirmed: it has a new one, below. "
                    "Give that one to the platform, and save again."
                )
            elif channel_id is not None and Channel.objects.filter(pk=channel_id).exists():
                channel_id, problem = (
                    None,
                    (
                        "A channel was already saved with this page's webhook URL (was the form "
                        "sent twice?): this one has a new URL, below. Check it, and save again."
                    ),
                )
            if channel_id is None:
                channel_id = messaging.channel_id_reserve()
            request._ct_channel_reservation = (channel_id, problem)
        return request._ct_channel_reservation

    def get_fieldsets(self, request, obj=None):
        fields = self._model_fields(request, obj)
        fieldsets = [(None, {"fields": fields + ([] if obj is not None else [RESERVATION])})]
        stored = stored_credentials(obj)
        for kind in [obj.kind] if obj is not None else KINDS:
            fieldsets.append(
                (
                    f"{get_connector(kind).display_name}: set-up and credentials",
                    {
                        "fields": credential_field_names(kind, stored),
                        "classes": ["ct-kind", f"ct-kind-{kind}"],
                        "description": self._setup(kind, obj, request),
                    },
                )
            )
        if obj is not None:
            fieldsets.append(("Last error", {"fields": self.readonly_fields}))
        return fieldsets

    def _setup(self, kind: str, obj, request) -> str:
        # The add page has a group per kind: each its own ids.
        code_id = "ct-webhook-url" if obj is not None else f"ct-webhook-url-{kind}"
        if obj is not None:
            address = messaging.webhook_url(obj, request)
        else:
            address = messaging.webhook_url_for(kind, self._reservation(request)[0], request)
        url = format_html(
            '<code id="{}">{}</code> '
            '<button type="button" class="button" data-ct-copy="{}" '
            'aria-describedby="{}-copied" hidden>Copy</button> '
            '<span id="{}-copied" role="status"></span>',
            code_id,
            address,
            code_id,
            code_id,
            code_id,
        )
        if obj is None:
            url = format_html("{} (this channel's, once you save it)", url)
        steps = format_html_join("", "<li>{}</li>", ((step,) for step in SETUP_STEPS[kind]))
        return format_html(
            '<p class="ct-webhook">Webhook URL: {}</p><ol class="ct-steps">{}</ol>', url, steps
        )

    def create_object(self, request, form):
        tenant = form.cleaned_data.get("tenant") if request.user.is_superuser else request.tenant
        given = form.credentials()
        channel = messaging.channel_create(
            tenant=tenant or form.instance.tenant,
            bot=form.cleaned_data["bot"],
            kind=form.cleaned_data["kind"],
            name=form.cleaned_data["name"],
            credentials=given,
            channel_id=form.reserved_id,
        )
        if channel.kind == ChannelKind.API and not given.get("signing_secret"):
            secret = messaging.channel_credentials(channel)["signing_secret"]
            self.message_user(
                request,
                f"The channel's signing secret is {secret} — copy it now: it will not be "
                "shown again. Check every event's X-ChatTonic-Signature with it.",
                messages.WARNING,
            )
        return channel

    def response_add(self, request, obj, post_url_continue=None):
        # The whole webhook URL exists now: show the channel's page, where it is.
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            url = messaging.webhook_url(obj, request)
            if get_connector(obj.kind).registers_webhook:
                said = f"{obj.get_kind_display()} sends its messages to {url} now."
            else:
                said = f"Its webhook URL is {url}: give it to the platform as the steps say."
            self.message_user(
                request, f"The channel {obj.name} was added. {said}", messages.SUCCESS
            )
            return HttpResponseRedirect(reverse("admin:messaging_channel_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            credentials = form.credentials()
            if credentials != form.stored:
                messaging.channel_credentials_set(channel=obj, credentials=credentials, merge=False)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(TenantScopedAdmin):
    list_title = "Delivery log"  # as the navigation names it; its rows are delivery attempts
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
