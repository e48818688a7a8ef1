"""The dashboard's bots: settings, the draft's JSON editor, versions, the sandbox."""

from __future__ import annotations

import difflib
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from bots import services
from bots.diagram import flow_svg
from bots.models import Bot, BotVersion
from chattonic.core import inputs
from chattonic.core.errors import ServiceError
from chattonic.tenancy.admin import TenantScopedAdmin

MAX_IMPORT_BYTES = 1024 * 1024


class DefinitionField(forms.JSONField):
    widget = forms.Textarea(
        attrs={"rows": 30, "cols": 100, "class": "ct-json-editor", "spellcheck": "false"}
    )

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value):
        # Read through the doors' cleaning step first: Django's JSONField would recurse
        # through a 100,000-deep document (a RecursionError, a 500).
        if isinstance(value, str) and value.strip():
            try:
                inputs.loads(value, field="definition")
            except inputs.InputError as exc:
                raise forms.ValidationError(exc.reason, code="invalid") from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str):
            try:
                inputs.loads(data)
            except inputs.InputError:
                return forms.fields.InvalidJSONInput(data)
        return super().bound_data(data, initial)


class BotForm(forms.ModelForm):
    draft_definition = DefinitionField(
        label="Draft flow (JSON)",
        help_text=(
            "The flow that the test chat runs; publish it to make it live. See docs/flows.md."
        ),
    )

    class Meta:
        model = Bot
        fields = ["draft_definition"]  # the admin adds the fieldsets' fields

    def clean_draft_definition(self):
        definition = self.cleaned_data["draft_definition"]
        if not isinstance(definition, dict):
            raise forms.ValidationError("A flow definition is a JSON object.")
        errors = services.definition_errors_as_fields(definition)
        if errors:
            raise forms.ValidationError(
                [
                    f"{field}: {message}"
                    for field, messages_ in errors.items()
                    for message in messages_
                ]
            )
        return definition


class ImportForm(forms.Form):
    file = forms.FileField(help_text="A flow exported from a bot (JSON).")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("The file is larger than 1 MB.")
        try:
            definition = inputs.loads(upload.read(), field="file")
        except inputs.InputError as exc:
            raise forms.ValidationError(
                f"The file is not valid JSON we take: {exc.reason}"
            ) from None
        if (
            isinstance(definition, dict)
            and "definition" in definition
            and "nodes" not in definition
        ):
            definition = definition["definition"]
        if not isinstance(definition, dict):
            raise forms.ValidationError("A flow definition is a JSON object.")
        errors = services.definition_errors_as_fields(definition)
        if errors:
            raise forms.ValidationError(
                [
                    f"{field}: {message}"
                    for field, messages_ in errors.items()
                    for message in messages_
                ]
            )
        return definition


@admin.register(Bot)
class BotAdmin(TenantScopedAdmin):
    form = BotForm
    list_display = ["name", "status", "region", "live_version", "launched_at"]
    list_filter = ["status", "region"]
    search_fields = ["name"]
    change_form_template = "bots/bot_change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "region", "status_display", "public_key", "live_version"]}),
        (
            "Conversation",
            {
                "fields": [
                    "default_language",
                    "welcome_text",
                    "fallback_text",
                    "fallback_limit",
                    "intent_threshold",
                    "business_hours",
                    "time_zone",
                ]
            },
        ),
        (
            "Web chat widget",
            {
                "fields": [
                    "title",
                    "theme_color",
                    "allowed_origins",
                    "prechat_form",
                    "away_message",
                    "embed_code",
                ]
            },
        ),
        ("Handoff", {"fields": ["ticket_after_hours"]}),
        ("Flow", {"fields": ["draft_definition"]}),
    ]

    @admin.display(description="live version")
    def live_version(self, bot):
        return f"v{bot.published_version.number}" if bot.published_version_id else "—"

    @admin.display(description="status")
    def status_display(self, bot):
        return bot.get_status_display() if bot.pk else "Draft"

    @admin.display(description="embed code")
    def embed_code(self, bot):
        if not bot.pk:
            return "—"
        from django.conf import settings

        src = f"{settings.PUBLIC_BASE_URL.rstrip('/')}/static/chattonic/widget.js"
        return format_html(
            '<code>&lt;script src="{}" data-bot="{}" async&gt;&lt;/script&gt;</code>',
            src,
            bot.public_key,
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = ["status_display", "public_key", "live_version", "embed_code"]
        if obj is not None and obj.launched_at:
            readonly.append("region")  # fixed once launched
        return readonly

    # --- Saving through the services --------------------------------------------------------

    def create_object(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.EDITABLE_FIELDS}
        return services.bot_create(
            tenant=form.instance.tenant,
            definition=form.cleaned_data["draft_definition"],
            **data,
        )

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.EDITABLE_FIELDS
        }
        if changes:
            services.bot_update(bot=obj, **changes)
        if "draft_definition" in form.changed_data:
            services.draft_update(bot=obj, definition=form.cleaned_data["draft_definition"])

    # --- Extra pages ------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/publish/",
                wrap(require_POST(self.publish_view)),
                name="bots_bot_publish",
            ),
            path(
                "<int:object_id>/launch/",
                wrap(require_POST(self.launch_view)),
                name="bots_bot_launch",
            ),
            path(
                "<int:object_id>/pause/", wrap(require_POST(self.pause_view)), name="bots_bot_pause"
            ),
            path("<int:object_id>/export/", wrap(self.export_view), name="bots_bot_export"),
            path("<int:object_id>/import/", wrap(self.import_view), name="bots_bot_import"),
            path("<int:object_id>/test/", wrap(self.test_view), name="bots_bot_test"),
            path("<int:object_id>/diagram/", wrap(self.diagram_view), name="bots_bot_diagram"),
            path("<int:object_id>/versions/", wrap(self.versions_view), name="bots_bot_versions"),
            path(
                "<int:object_id>/versions/<int:number>/rollback/",
                wrap(require_POST(self.rollback_view)),
                name="bots_bot_rollback",
            ),
            *super().get_urls(),
        ]

    def _bot(self, request, object_id, *, write: bool) -> Bot:
        bot = self.get_object(request, str(object_id))  # 404 for another tenant's bot
        allowed = (
            self.has_change_permission(request, bot)
            if write
            else self.has_view_permission(request, bot)
        )
        if not allowed:
            raise PermissionDenied
        return bot

    def _back(self, bot) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:bots_bot_change", args=[bot.pk]))

    def _run(self, request, bot, action, success: str) -> HttpResponseRedirect:
        try:
            action()
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, success, messages.SUCCESS)
        return self._back(bot)

    def publish_view(self, request, object_id):
        bot = self._bot(request, object_id, write=True)
        note = request.POST.get("note", "")[:300]
        return self._run(
            request,
            bot,
            lambda: services.bot_publish(bot=bot, note=note, published_by=request.user),
            "Published a new version: new conversations use it now.",
        )

    def launch_view(self, request, object_id):
        bot = self._bot(request, object_id, write=True)
        return self._run(request, bot, lambda: services.bot_launch(bot=bot), "The bot is live.")

    def pause_view(self, request, object_id):
        bot = self._bot(request, object_id, write=True)
        return self._run(request, bot, lambda: services.bot_pause(bot=bot), "The bot is paused.")

    def rollback_view(self, request, object_id, number):
        bot = self._bot(request, object_id, write=True)
        version = get_object_or_404(
            BotVersion.objects.for_tenant(bot.tenant_id), bot=bot, number=number
        )
        return self._run(
            request,
            bot,
            lambda: services.bot_rollback(bot=bot, version=version, published_by=request.user),
            f"Rolled back to version {number} (published as a new version).",
        )

    def export_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        body = json.dumps(bot.draft_definition, indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="bot-{bot.pk}-flow.json"'
        return response

    def import_view(self, request, object_id):
        bot = self._bot(request, object_id, write=True)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            return self._run(
                request,
                bot,
                lambda: services.draft_update(bot=bot, definition=form.cleaned_data["file"]),
                "Imported the flow into the draft.",
            )
        return TemplateResponse(
            request,
            "bots/import.html",
            {
                **self.admin_site.each_context(request),
                "bot": bot,
                "form": form,
                "opts": self.model._meta,
                "title": f"Import a flow into {bot}",
            },
        )

    def test_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        return TemplateResponse(
            request,
            "bots/test.html",
            {
                **self.admin_site.each_context(request),
                "bot": bot,
                "opts": self.model._meta,
                "title": f"Test {bot} (draft)",
            },
        )

    def diagram_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        version = None
        if request.GET.get("version"):
            version = get_object_or_404(
                BotVersion.objects.for_tenant(bot.tenant_id), bot=bot, number=request.GET["version"]
            )
        definition = version.definition if version else bot.draft_definition
        return TemplateResponse(
            request,
            "bots/diagram.html",
            {
                **self.admin_site.each_context(request),
                "bot": bot,
                "opts": self.model._meta,
                # Every value inside the SVG is escaped by flow_svg.
                "svg": mark_safe(flow_svg(definition)),  # noqa: S308
                "version": version,
                "title": f"The flow of {bot}",
            },
        )

    def versions_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        versions = list(
            BotVersion.objects.for_tenant(bot.tenant_id).filter(bot=bot).order_by("-number")
        )
        diff = None
        a, b = request.GET.get("a"), request.GET.get("b")
        if a and b:
            by_number = {str(v.number): v for v in versions}
            if a not in by_number or b not in by_number:
                messages.error(request, "Choose two versions of this bot.")
            else:
                diff = _diff(by_number[a], by_number[b])
        return TemplateResponse(
            request,
            "bots/versions.html",
            {
                **self.admin_site.each_context(request),
                "bot": bot,
                "versions": versions,
                "diff": diff,
                "a": a,
                "b": b,
                "opts": self.model._meta,
                "title": f"Versions of {bot}",
            },
        )


def _diff(old: BotVersion, new: BotVersion) -> list[tuple[str, str]]:
    """A unified diff of two versions' definitions, as (css class, line) pairs."""

    def lines(version):
        return json.dumps(
            version.definition, indent=2, sort_keys=True, ensure_ascii=False
        ).splitlines()

    result = []
    for line in difflib.unified_diff(
        lines(old), lines(new), f"version {old.number}", f"version {new.number}", lineterm=""
    ):
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        result.append((kind, line))
    return result


@admin.register(BotVersion)
class BotVersionAdmin(TenantScopedAdmin):
    list_display = ["bot", "number", "note", "published_by", "published_at"]
    list_filter = ["bot"]
    fields = ["bot", "number", "note", "published_by", "published_at", "definition"]
    readonly_fields = fields

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # published versions never change

    def has_delete_permission(self, request, obj=None):
        return False
