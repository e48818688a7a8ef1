"""The dashboard's support: tenant staff report problems and follow their tickets; operators
(superusers) see every tenant's tickets, answer them, move them, and watch the Trello mirror."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.utils.html import format_html

from chattonic.tenancy.admin import TenantScopedAdmin
from support import selectors, services, targets
from support.models import SupportHoliday, Ticket, TicketComment

REPORT_FIELDS = ["title", "description", "severity", "bot", "conversation"]


class ReportForm(forms.ModelForm):
    class Meta:
        model = Ticket
        fields = REPORT_FIELDS
        help_texts = {
            "description": "What happened, where, since when; what you expected instead.",
            "conversation": "Optional: the id of a conversation that shows the problem.",
        }


class ReplyForm(forms.ModelForm):
    comment = forms.CharField(
        label="Add a comment",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
    )

    class Meta:
        model = Ticket
        fields = []


class ReporterReplyForm(ReplyForm):
    """Tenant staff's form: a comment, and closing the ticket (docs/support.md: the reporter
    may close it; the page offered no way to)."""

    close = forms.BooleanField(
        label="Close this ticket",
        required=False,
        help_text="No more help needed. A closed ticket takes no more comments: a new problem "
        "is a new report.",
    )


class OperatorReplyForm(ReplyForm):
    internal = forms.BooleanField(
        label="Internal comment",
        required=False,
        help_text="Only the support team sees it: never shown to the tenant.",
    )

    class Meta:
        model = Ticket
        fields = ["status", "severity"]


def _terms() -> str:
    return (
        f"Service interruptions are answered within {settings.SUPPORT_INTERRUPTION_TARGET_HOURS} "
        f"hours, around the clock; everything else within {settings.SUPPORT_RESPONSE_TARGET_HOURS} "
        f"support hours: {targets.support_calendar().describe()}."
    )


@admin.register(Ticket)
class TicketAdmin(TenantScopedAdmin):
    list_display = ["id", "title", "severity", "status", "due", "first_response"]
    list_display_links = ["id", "title"]
    list_filter = ["status", "severity", "source"]
    search_fields = ["title", "description", "reporter_name", "reporter_email"]
    raw_id_fields = ["conversation"]
    change_list_template = "support/admin/ticket_change_list.html"
    change_form_template = "support/admin/ticket_change_form.html"

    # --- columns and read-only fields ---------------------------------------------------------

    @admin.display(description="first response due", ordering="first_response_due_at")
    def due(self, obj):
        return targets.format_local(obj.first_response_due_at, short=True)

    @admin.display(description="first response")
    def first_response(self, obj):
        state = targets.response_state(obj)
        return format_html(
            '<span class="ticket-response ticket-response-{}">{}</span>', state.state, state.label
        )

    @admin.display(description="when to expect an answer")
    def expected_answer(self, obj):
        return targets.expectation(obj)

    @admin.display(description="Trello card")
    def trello_card(self, obj):
        card = getattr(obj, "trello_card", None)
        if card is None:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', card.short_url, card.short_url
        )

    def get_list_display(self, request):
        display = super().get_list_display(request)
        return [*display, "trello_card"] if request.user.is_superuser else display

    # --- the forms ----------------------------------------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ReportForm
        else:
            kwargs["form"] = OperatorReplyForm if request.user.is_superuser else ReporterReplyForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and "severity" in form.base_fields:
            severity = form.base_fields["severity"]
            severity.help_text = f"{Ticket._meta.get_field('severity').help_text} {_terms()}"
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return REPORT_FIELDS + (["tenant"] if request.user.is_superuser else [])
        fields = list(self.get_readonly_fields(request, obj))
        if request.user.is_superuser:
            fields += ["status", "severity", "comment", "internal"]
        elif obj.status != Ticket.Status.CLOSED:
            fields += ["comment", "close"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = ["title", "description"]
        if not request.user.is_superuser:
            fields += ["severity", "status"]
        fields += [
            "source",
            "reporter_name",
            "reporter_email",
            "bot",
            "conversation",
            "created_at",
            "due",
            "first_response",
            "expected_answer",
        ]
        if request.user.is_superuser:
            fields += ["tenant", "trello_card"]
        return fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "trello_card")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        # A closed ticket is read, not saved, by its tenant: it offered three Save buttons
        # with nothing to change.
        if obj is not None and obj.status == Ticket.Status.CLOSED:
            return request.user.is_superuser
        return super().has_change_permission(request, obj)

    # --- writes, through the services ---------------------------------------------------------

    def create_object(self, request, form):
        data = form.cleaned_data
        ticket = services.ticket_create(
            tenant=form.instance.tenant,
            title=data["title"],
            description=data.get("description", ""),
            severity=data["severity"],
            source=Ticket.Source.DASHBOARD,
            reporter=request.user,
            bot=data.get("bot"),
            conversation=data.get("conversation"),
        )
        self.message_user(
            request,
            f"Thank you: ticket #{ticket.pk} is with our support team. "
            f"{targets.expectation(ticket)}",
            messages.SUCCESS,
        )
        request.ct_reported = True  # this says it: not Django's "was added successfully" too
        return ticket

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        if getattr(request, "ct_reported", False) and level == messages.SUCCESS:
            return
        super().message_user(request, message, level, *args, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        ticket = Ticket.objects.get(pk=obj.pk)
        if request.user.is_superuser:
            if data.get("severity") and data["severity"] != ticket.severity:
                services.ticket_severity_change(ticket=ticket, severity=data["severity"])
            if data.get("status") and data["status"] != ticket.status:
                services.ticket_status_change(ticket=ticket, status=data["status"], by_support=True)
        if data.get("comment", "").strip():
            services.ticket_comment_add(
                ticket=ticket,
                body=data["comment"],
                origin=(
                    TicketComment.Origin.SUPPORT
                    if request.user.is_superuser
                    else TicketComment.Origin.TENANT
                ),
                author=request.user,
                is_internal=bool(data.get("internal")) and request.user.is_superuser,
            )
        if data.get("close") and not request.user.is_superuser:
            services.ticket_status_change(
                ticket=ticket, status=Ticket.Status.CLOSED, by_support=False
            )

    # --- pages --------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {
            "title": "Report a problem",
            "support_terms": _terms(),
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = dict(extra_context or {})
        extra_context["support_terms"] = _terms()
        if request.user.is_superuser:
            extra_context["trello_status"] = selectors.trello_status()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        ticket = self.get_object(request, unquote(object_id))
        thread = list(selectors.ticket_comments_for(ticket=ticket, user=request.user))
        for comment in thread:
            # In the support time zone, as the ticket's due time and answer above are (the
            # thread read in UTC, unmarked, beside them).
            comment.when = targets.format_local(comment.created_at)
        extra_context["ticket_thread"] = thread
        if request.user.is_superuser:
            extra_context["trello_status"] = selectors.trello_status()
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(SupportHoliday)
class SupportHolidayAdmin(admin.ModelAdmin):
    """Days without support hours (operators only): they do not count toward the targets."""

    list_display = ["date", "name"]
    ordering = ["-date"]
