"""The dashboard's statistics: totals, charts per day (inline SVG), per bot and channel. The
page is the changelist of the daily statistics (Dashboard → Statistics)."""

from datetime import UTC, date, timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from bots.models import Bot
from chattonic.tenancy.admin import TenantScopedAdmin
from conversations.models import ChannelKind
from stats.models import DailyStat
from stats.services import stats_dashboard


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
        "stats/stats.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            "title": "Statistics",
            "form": form,
            "report": report,
            "charts": charts,
        },
    )


@admin.register(DailyStat)
class StatsAdmin(TenantScopedAdmin):
    """The statistics page (the rows themselves are rebuilt from the conversations, never
    edited)."""

    # A tenant's numbers: operators (signed in with no tenant) look at them through its staff,
    # so their dashboard has no link to a page that would refuse them.
    def has_module_permission(self, request):
        return getattr(request, "tenant", None) is not None and super().has_module_permission(
            request
        )

    def has_view_permission(self, request, obj=None):
        return getattr(request, "tenant", None) is not None and super().has_view_permission(
            request, obj
        )

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return stats_view(self, request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A row's own address (the admin gives every model one): the statistics page of
        its day, bot and channel, not the row's raw counters and samples."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        row = self.get_object(request, unquote(object_id))
        query = {"start": row.day.isoformat(), "end": row.day.isoformat()}
        if row.bot_id:
            query["bot"] = row.bot_id
        if row.channel_kind:
            query["channel"] = row.channel_kind
        url = reverse("admin:stats_dailystat_changelist")
        return HttpResponseRedirect(f"{url}?{urlencode(query)}")
