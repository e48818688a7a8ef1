"""The dashboard's bots: settings, status and lifecycle, the raw definition of the flow,
versions, the sandbox.

One form a page, each posting to its own view: the bot's page is its settings form (with
"Save and publish" among its own buttons) and, outside it, a form each for Launch and Pause;
the flow's raw definition, the import and each rollback have their own pages or forms.
"""

from __future__ import annotations

import difflib
import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from bots import hooks, services
from bots.diagram import NODE_LABELS, flow_svg
from bots.engine import NODE_TYPES
from bots.forms import (
    BUILDER_MEDIA,
    DASHBOARD_MEDIA,
    BotAddForm,
    BotForm,
    FlowForm,
    ImportForm,
)
from bots.gallery import FLOW_TEMPLATES, LANGUAGES
from bots.models import Bot, BotVersion, UnmatchedPhrase
from bots.regions import bots_elsewhere
from bots.selectors import (
    bot_has_unpublished_changes,
    definition_problems,
    understanding_summary,
)
from chattonic.core import inputs
from chattonic.core.errors import ServiceError, ValidationFailed
from chattonic.core.public_urls import absolute_url
from chattonic.tenancy.admin import TenantScopedAdmin
from chattonic.tenancy.selectors import staff_display_name

WIDGET_SCRIPT = "chattonic/widget.js"
MAX_NOTE = 300
# The engine's settings as people name them (a version's page).
SETTING_LABELS = {
    "welcome_text": "Welcome text",
    "fallback_text": "Fallback text",
    "handoff_text": "Handoff text",
    "fallback_limit": "Misunderstandings before a handoff",
    "intent_threshold": "Intent confidence threshold",
    "language": "Language",
}


def widget_embed_code(bot: Bot, request) -> str:
    """The tag a tenant pastes into their pages. The script's URL is the unhashed static
    name (it must not change with each deployment) on the platform's public base URL."""
    static = f"{settings.STATIC_URL.rstrip('/')}/{WIDGET_SCRIPT}"
    src = static if "://" in static else absolute_url(static, request)  # or a CDN's own URL
    return f'<script src="{src}" data-bot="{bot.public_key}" async></script>'


@admin.register(Bot)
class BotAdmin(TenantScopedAdmin):
    form = BotForm
    list_display = ["name", "status", "region", "default_language", "live_version", "launched_at"]
    list_filter = ["status", "region"]
    search_fields = ["name"]
    change_form_template = "bots/bot_change_form.html"
    change_list_template = "bots/bot_change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "region"]}),
        (
            "Conversation",
            {
                "description": "What the bot says and how readily it hands the chat to a "
                "person. Visitors get these with the next version you publish.",
                "fields": [
                    "default_language",
                    "welcome_text",
                    "fallback_text",
                    "handoff_text",
                    "fallback_limit",
                    "intent_threshold",
                ],
            },
        ),
        (
            "Business hours",
            {
                "description": "When your team answers chats, in the bot's time zone; a flow "
                "can ask whether it is open now (a condition on business hours).",
                "fields": ["time_zone", "business_hours"],
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
                ]
            },
        ),
        ("Handoff", {"fields": ["ticket_after_hours"]}),
    ]

    @admin.display(description="live version")
    def live_version(self, bot):
        return f"v{bot.published_version.number}" if bot.published_version_id else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("published_version")

    def changelist_view(self, request, extra_context=None):
        # The tenant's bots of the other regions, linking to their region's dashboard.
        extra_context = {**(extra_context or {}), "elsewhere": bots_elsewhere(request.tenant)}
        return super().changelist_view(request, extra_context)

    def get_readonly_fields(self, request, obj=None):
        # A bot's rows are in its region's deployment: a draft changes region by moving there.
        return ["region"] if obj is not None else []

    # --- Adding: the template gallery first, then the form -----------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "GET" and not request.GET:  # values in the URL: the form itself
            return self._gallery(request)
        return super().add_view(request, form_url, extra_context)

    def _gallery(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        groups = {
            code: {"code": code, "name": name, "cards": []} for code, name in LANGUAGES.items()
        }
        for template in FLOW_TEMPLATES.values():
            definition = template.definition
            groups[template.language]["cards"].append(
                {
                    "name": template.name,
                    "title": template.title,
                    "summary": template.summary,
                    "steps": len(definition.get("nodes") or {}),
                    "kinds": sorted(
                        {
                            NODE_LABELS.get(n.get("type"), n.get("type"))
                            for n in definition["nodes"].values()
                        }
                    ),
                }
            )
        return TemplateResponse(
            request,
            "bots/gallery.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Add bot: start from a template",
                "media": BUILDER_MEDIA,
                "groups": list(groups.values()),
            },
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = BotAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            fieldsets = [(None, {"fields": ["template", "name", "region"]}), *fieldsets[1:]]
        return fieldsets

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        template = FLOW_TEMPLATES.get(request.GET.get("template", ""))
        if template is not None:
            initial.update(template.bot_fields)  # shown, so the owner sees what it sets
        return initial

    # --- Saving through the services --------------------------------------------------------

    def create_object(self, request, form):
        data = {k: v for k, v in form.cleaned_data.items() if k in services.EDITABLE_FIELDS}
        template = form.cleaned_data.get("template") or None
        return services.bot_create(tenant=form.instance.tenant, template=template, **data)

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

    def response_change(self, request, obj):
        if "_publish" in request.POST:  # "Save and publish": saved above, now published
            self._publish(request, obj, request.POST.get("_publish_note", ""))
            return self._back(obj)
        return super().response_change(request, obj)

    # --- The bot's page ---------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            context.update(self._status_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _status_context(self, request, bot: Bot) -> dict:
        live = bot.published_version
        newest = BotVersion.objects.for_tenant(bot.tenant_id).filter(bot=bot).order_by("-number")
        newest = newest.only("number", "training").first()
        return {
            "live": live,
            "published_by": staff_display_name(live.published_by)
            if live and live.published_by_id
            else None,
            # A version published after the live one, still training (or failed to train).
            "pending": newest if newest and newest.training != BotVersion.Training.READY else None,
            # The live matcher's own estimates, from its training phrases left out one at a time.
            "understanding": understanding_summary(live),
            "unpublished": bot_has_unpublished_changes(bot),
            "unmatched_new": UnmatchedPhrase.objects.for_tenant(bot.tenant_id)
            .filter(bot=bot, status=UnmatchedPhrase.Status.NEW)
            .count(),
            "embed_code": widget_embed_code(bot, request),
            "demo_url": absolute_url(reverse("webchat-demo", args=[bot.public_key]), request),
            "flow_summary": _flow_summary(bot.draft_definition),
        }

    # --- Extra pages ------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:object_id>/launch/",
                wrap(require_POST(self.launch_view)),
                name="bots_bot_launch",
            ),
            path(
                "<int:object_id>/pause/", wrap(require_POST(self.pause_view)), name="bots_bot_pause"
            ),
            path("<int:object_id>/flow/", wrap(self.flow_view), name="bots_bot_flow"),
            path("<int:object_id>/builder/", wrap(self.builder_view), name="bots_bot_builder"),
            path(
                "<int:object_id>/builder/check/",
                wrap(require_POST(self.builder_check_view)),
                name="bots_bot_builder_check",
            ),
            path(
                "<int:object_id>/builder/draft/",
                wrap(require_POST(self.builder_draft_view)),
                name="bots_bot_builder_draft",
            ),
            path(
                "<int:object_id>/builder/sandbox/",
                wrap(self.builder_sandbox_view),
                name="bots_bot_builder_sandbox",
            ),
            path(
                "<int:object_id>/publish/",
                wrap(require_POST(self.publish_view)),
                name="bots_bot_publish",
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
            path(
                "<int:object_id>/unmatched/", wrap(self.unmatched_view), name="bots_bot_unmatched"
            ),
            path(
                "<int:object_id>/unmatched/<int:phrase_id>/<str:verb>/",
                wrap(require_POST(self.unmatched_act_view)),
                name="bots_bot_unmatched_act",
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

    def _back(self, bot, page: str = "change") -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(f"admin:bots_bot_{page}", args=[bot.pk]))

    def _run(self, request, bot, action, success: str, page: str = "change"):
        try:
            action()
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, success, messages.SUCCESS)
        return self._back(bot, page)

    def _publish(self, request, bot: Bot, note: str) -> None:
        try:
            version = services.bot_publish(
                bot=bot, note=note.strip()[:MAX_NOTE], published_by=request.user
            )
        except ServiceError as exc:
            self.message_user(request, f"Not published: {exc.message}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"Published version {version.number}: training… new conversations use it "
                "as soon as it is ready (a few seconds).",
                messages.SUCCESS,
            )

    def _page(self, request, bot, template: str, title: str, **context) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "bot": bot,
                "opts": self.model._meta,
                "title": title,
                "media": DASHBOARD_MEDIA,
                "has_change_permission": self.has_change_permission(request, bot),
                **context,
            },
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
            f"Rolled back to version {number}: published again as a new version, with its "
            "settings; new conversations use it as soon as it is trained (a few seconds).",
            page="versions",
        )

    def flow_view(self, request, object_id):
        """The draft flow's raw definition: for power users, until a visual editor."""
        bot = self._bot(request, object_id, write=request.method == "POST")
        form = FlowForm(request.POST or None, initial={"definition": bot.draft_definition})
        if request.method == "POST" and form.is_valid():
            definition = form.cleaned_data["definition"]
            try:
                bot = services.draft_update(bot=bot, definition=definition)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                if "_publish" in request.POST:
                    self._publish(request, bot, request.POST.get("_publish_note", ""))
                else:
                    self.message_user(
                        request,
                        "Saved the draft: the test chat runs it now; publish it to make it live.",
                        messages.SUCCESS,
                    )
                return self._back(bot, "flow")
        return self._page(request, bot, "bots/flow.html", f"The flow of {bot}", form=form)

    # --- The flow editor (bots/static/bots/builder.js) ------------------------------------------

    def builder_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        return self._page(
            request,
            bot,
            "bots/builder.html",
            f"Flow editor: {bot}",
            media=BUILDER_MEDIA,
            builder={
                "definition": bot.draft_definition,
                "based_on": bot.draft_updated_at.isoformat(),
                "node_types": list(NODE_TYPES),
                "node_labels": NODE_LABELS,
                "check_url": reverse("admin:bots_bot_builder_check", args=[bot.pk]),
                "draft_url": reverse("admin:bots_bot_builder_draft", args=[bot.pk]),
                "sandbox_url": reverse("admin:bots_bot_builder_sandbox", args=[bot.pk]),
                "bot_key": bot.public_key,
                "can_edit": self.has_change_permission(request, bot),
            },
        )

    def builder_check_view(self, request, object_id):
        """The drafts' rules on the editor's definition, without saving it."""
        self._bot(request, object_id, write=False)
        try:
            body = _json_object(request)
        except ServiceError as exc:
            return _json_error(exc)
        return JsonResponse(definition_problems(body.get("definition")))

    def builder_draft_view(self, request, object_id):
        """Save the editor's definition as the draft (the same service as the API's PATCH),
        refusing it if the draft changed since the editor loaded it."""
        bot = self._bot(request, object_id, write=True)
        try:
            body = _json_object(request)
            based_on = body.get("based_on")
            if based_on is not None:
                parsed = parse_datetime(based_on) if isinstance(based_on, str) else None
                if parsed is None:
                    raise ValidationFailed.for_field("based_on", "A date and time (ISO 8601).")
                based_on = parsed
            bot = services.draft_update(
                bot=bot, definition=body.get("definition"), based_on=based_on
            )
        except ServiceError as exc:
            return _json_error(exc)
        return JsonResponse({"saved": True, "based_on": bot.draft_updated_at.isoformat()})

    def builder_sandbox_view(self, request, object_id):
        """Where the staff member's test chat is in the flow (the editor highlights it)."""
        bot = self._bot(request, object_id, write=False)
        token = request.GET.get("session", "")[:500]
        return JsonResponse({"node": hooks.sandbox_node(bot, token) if token else None})

    def publish_view(self, request, object_id):
        """Publish the saved draft (the editor's "Publish" button), then back to the editor."""
        bot = self._bot(request, object_id, write=True)
        self._publish(request, bot, request.POST.get("note", ""))
        return self._back(bot, "builder")

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
                page="flow",
            )
        return self._page(request, bot, "bots/import.html", f"Import a flow into {bot}", form=form)

    def test_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        return self._page(request, bot, "bots/test.html", f"Test {bot} (draft)")

    def diagram_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        version = None
        if request.GET.get("version"):
            version = get_object_or_404(
                BotVersion.objects.for_tenant(bot.tenant_id), bot=bot, number=request.GET["version"]
            )
        definition = version.definition if version else bot.draft_definition
        return self._page(
            request,
            bot,
            "bots/diagram.html",
            f"The flow of {bot}" + (f", version {version.number}" if version else ""),
            # Every value inside the SVG is escaped by flow_svg.
            svg=mark_safe(flow_svg(definition)),  # noqa: S308
            version=version,
            versions=BotVersion.objects.for_tenant(bot.tenant_id)
            .filter(bot=bot)
            .order_by("-number"),
        )

    def unmatched_view(self, request, object_id):
        """What visitors wrote that the bot did not understand, the most recent first: each
        with "Add to intent" (the draft's intents to choose from) and "Dismiss"."""
        bot = self._bot(request, object_id, write=False)
        showing = request.GET.get("status") or UnmatchedPhrase.Status.NEW
        if showing not in UnmatchedPhrase.Status.values:
            showing = UnmatchedPhrase.Status.NEW
        phrases = list(
            UnmatchedPhrase.objects.for_tenant(bot.tenant_id)
            .filter(bot=bot, status=showing)
            .order_by("-last_seen")[:200]
        )
        intents = [
            str(i.get("name"))
            for i in (bot.draft_definition or {}).get("intents") or []
            if i.get("name")
        ]
        return self._page(
            request,
            bot,
            "bots/unmatched.html",
            f"Unmatched phrases of {bot}",
            phrases=phrases,
            intents=intents,
            showing=showing,
            statuses=UnmatchedPhrase.Status.choices,
        )

    def unmatched_act_view(self, request, object_id, phrase_id, verb):
        bot = self._bot(request, object_id, write=True)
        phrase = get_object_or_404(
            UnmatchedPhrase.objects.for_tenant(bot.tenant_id), bot=bot, pk=phrase_id
        )
        if verb == "add":
            intent = request.POST.get("intent", "")
            return self._run(
                request,
                bot,
                lambda: services.unmatched_phrase_add_to_intent(phrase=phrase, intent=intent),
                f"“{phrase.text}” is now a training phrase of {intent} in the draft: publish "
                "to make the bot understand it.",
                page="unmatched",
            )
        if verb == "dismiss":
            return self._run(
                request,
                bot,
                lambda: services.unmatched_phrase_dismiss(phrase=phrase),
                f"“{phrase.text}” is dismissed.",
                page="unmatched",
            )
        raise Http404

    def versions_view(self, request, object_id):
        bot = self._bot(request, object_id, write=False)
        versions = list(
            BotVersion.objects.for_tenant(bot.tenant_id)
            .filter(bot=bot)
            .select_related("published_by")
            .order_by("-number")
        )
        for version in versions:
            version.publisher = (
                staff_display_name(version.published_by) if version.published_by_id else None
            )
        diff = None
        a, b = request.GET.get("a"), request.GET.get("b")
        if not (a or b) and len(versions) > 1:  # offer the last change
            a, b = str(versions[1].number), str(versions[0].number)
        elif a and b:
            by_number = {str(v.number): v for v in versions}
            if a not in by_number or b not in by_number:
                messages.error(request, "Choose two versions of this bot.")
            else:
                diff = _diff(by_number[a], by_number[b])
        return self._page(
            request,
            bot,
            "bots/versions.html",
            f"Versions of {bot}",
            versions=versions,
            diff=diff,
            a=a,
            b=b,
        )


def _json_object(request) -> dict:
    try:
        body = inputs.loads(request.body or b"{}", field="body")
    except RequestDataTooBig:
        raise ValidationFailed.for_field("body", "The flow is too large.") from None
    if not isinstance(body, dict):
        raise ValidationFailed.for_field("body", "A JSON object is needed.")
    return body


def _json_error(exc: ServiceError) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}},
        status=exc.status,
    )


def _flow_summary(definition: dict) -> str:
    nodes = definition.get("nodes") or {}
    intents = definition.get("intents") or []
    return (
        f"{len(nodes)} step{'s' if len(nodes) != 1 else ''}, "
        f"{len(intents)} intent{'s' if len(intents) != 1 else ''}; it starts at "
        f"“{definition.get('start', '?')}”."
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
    list_display = ["bot", "number", "note", "publisher", "published_at"]
    list_filter = ["bot"]
    fields = [
        "bot",
        "number",
        "note",
        "publisher",
        "published_at",
        "conversation_settings",
        "flow",
    ]
    readonly_fields = fields

    @property
    def media(self):
        return super().media + DASHBOARD_MEDIA

    @admin.display(description="published by", ordering="published_by")
    def publisher(self, obj):
        return staff_display_name(obj.published_by) if obj.published_by_id else "-"

    @admin.display(description="settings")
    def conversation_settings(self, version):
        stored = version.definition.get("settings") or {}
        rows = []
        for key, label in SETTING_LABELS.items():
            value = stored.get(key)
            if key == "language":
                value = dict(Bot.Language.choices).get(value, value)
            elif key == "fallback_limit" and key in stored and value is None:
                value = "never"
            rows.append((label, "—" if value in (None, "") else value))
        return format_html(
            '<table class="ct-settings"><tbody>{}</tbody></table>',
            format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description="flow")
    def flow(self, version):
        diagram = reverse("admin:bots_bot_diagram", args=[version.bot_id])
        raw = json.dumps(
            {k: v for k, v in version.definition.items() if k != "settings"},
            indent=2,
            ensure_ascii=False,
        )
        return format_html(
            '<p>{} <a href="{}?version={}">See its diagram</a>.</p>'
            '<details><summary>Raw definition (JSON)</summary><pre class="ct-raw">{}</pre>'
            "</details>",
            _flow_summary(version.definition),
            diagram,
            version.number,
            raw,
        )

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # published versions never change

    def has_delete_permission(self, request, obj=None):
        return False
