"""The operators' view of backups: runs and restore checks, failures in red, and buttons
to start a backup or a restore check (queued for the worker). Superusers only."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html, format_html_join

from backups import selectors, services
from backups.archive import size_human
from backups.errors import BackupError
from backups.models import BackupRun, RestoreCheck
from chattonic.admin_site import OperatorsOnly

COLORS = {
    "succeeded": "#2e7d32",
    "passed": "#2e7d32",
    "failed": "#c62828",
    "running": "#1565c0",
    "queued": "#757575",
}


DIRECTORIES = re.compile(r"(?:/[^\s/]+)+/")


def short(text: str, length: int = 120) -> str:
    """A message for a list column: file names without their directories, cut short."""
    text = DIRECTORIES.sub("", text.splitlines()[0] if text else "")
    return text if len(text) <= length else text[: length - 1] + "…"


def badge(status: str, label: str):
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 7px;border-radius:9px;'
        'font-weight:600">{}</span>',
        COLORS.get(status, "#757575"),
        label,
    )


class OperatorAdmin(OperatorsOnly, admin.ModelAdmin):
    """Read-only records; operators act through the buttons and actions."""

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + list(self.readonly_fields)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "summary": selectors.backups_summary(),
            "can_operate": self.has_operate_permission(request),
            "backup_keep": settings.BACKUP_KEEP,
            "backup_dir": settings.BACKUP_DIR,
            "backup_encrypted": bool(settings.BACKUP_ENCRYPTION_KEY),
        }
        return super().changelist_view(request, extra_context)

    def _operate(self, request, start):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_operate_permission(request):
            raise PermissionDenied
        try:
            message = start()
        except BackupError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        opts = self.model._meta
        return redirect(f"admin:{opts.app_label}_{opts.model_name}_changelist")


@admin.register(BackupRun)
class BackupRunAdmin(OperatorAdmin):
    list_display = [
        "id",
        "status_badge",
        "trigger",
        "started_at",
        "took",
        "size_display",
        "verified_badge",
        "kept",
        "problem",
    ]
    list_display_links = ["id", "status_badge"]
    list_filter = ["status", "verified", "trigger", "encrypted"]
    search_fields = ["file_path", "sha256", "error", "verification_error"]
    readonly_fields = ["row_counts_table"]
    actions = ["verify_selected", "restore_check_selected"]
    fieldsets = [
        (None, {"fields": ["status", "error", "trigger", "requested_by"]}),
        ("When", {"fields": ["created_at", "started_at", "finished_at", "deleted_at"]}),
        ("Copy", {"fields": ["file_path", "size", "sha256", "encrypted", "key_id"]}),
        ("Verification", {"fields": ["verified", "verified_at", "verification_error"]}),
        (
            "Source",
            {
                "fields": [
                    "engine",
                    "database_name",
                    "server_version",
                    "tool_version",
                    "region",
                    "app_version",
                ]
            },
        ),
        ("Contents", {"fields": ["row_counts_table", "migrations"]}),
    ]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="took")
    def took(self, obj):
        if obj.started_at and obj.finished_at:
            return f"{(obj.finished_at - obj.started_at).total_seconds():.0f}s"
        return "—"

    @admin.display(description="size", ordering="size")
    def size_display(self, obj):
        return size_human(obj.size)

    @admin.display(description="verified", ordering="verified")
    def verified_badge(self, obj):
        if obj.verification_error:
            return badge("failed", "corrupt")
        if obj.verified:
            return badge("passed", "verified")
        return "—"

    @admin.display(description="kept", boolean=True)
    def kept(self, obj):
        return obj.has_file

    @admin.display(description="problem")
    def problem(self, obj):
        text = obj.error or obj.verification_error
        return format_html('<span style="color:#c62828">{}</span>', short(text)) if text else ""

    @admin.display(description="row counts")
    def row_counts_table(self, obj):
        rows = sorted((obj.row_counts or {}).items())
        if not rows:
            return "—"
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows),
        )

    def get_urls(self):
        start = path(
            "start/",
            self.admin_site.admin_view(self.start_view),
            name="backups_backuprun_start",
        )
        return [start, *super().get_urls()]

    def start_view(self, request):
        def start():
            run = services.backup_request(requested_by=request.user)
            return f"Backup #{run.pk} is queued: the worker takes it now."

        return self._operate(request, start)

    @admin.action(description="Verify the selected copies", permissions=["operate"])
    def verify_selected(self, request, queryset):
        queued = 0
        for run in queryset:
            if run.has_file:
                services.backup_verify_request(run=run)
                queued += 1
        self.message_user(request, f"Verification of {queued} copies queued.", messages.SUCCESS)

    @admin.action(description="Restore-check the selected copies", permissions=["operate"])
    def restore_check_selected(self, request, queryset):
        checks = [
            services.restore_check_request(backup=run, requested_by=request.user)
            for run in queryset
            if run.has_file
        ]
        self.message_user(
            request,
            f"Restore checks queued: {', '.join(f'#{c.pk}' for c in checks) or 'none'}.",
            messages.SUCCESS,
        )


@admin.register(RestoreCheck)
class RestoreCheckAdmin(OperatorAdmin):
    list_display = ["id", "status_badge", "backup", "trigger", "started_at", "took", "headline"]
    list_display_links = ["id", "status_badge"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["report"]
    fields = [
        "status",
        "backup",
        "trigger",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "duration",
        "scratch_database",
        "report",
    ]

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="took", ordering="duration")
    def took(self, obj):
        return f"{obj.duration.total_seconds():.0f}s" if obj.duration else "—"

    @admin.display(description="details")
    def headline(self, obj):
        lines = (obj.details or "").splitlines()
        if obj.status == RestoreCheck.Status.FAILED:
            return format_html('<span style="color:#c62828">{}</span>', short(lines[0]))
        return short(next((line for line in lines if line.startswith("row counts:")), ""))

    @admin.display(description="details")
    def report(self, obj):
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', obj.details or "")

    def get_urls(self):
        start = path(
            "start/",
            self.admin_site.admin_view(self.start_view),
            name="backups_restorecheck_start",
        )
        return [start, *super().get_urls()]

    def start_view(self, request):
        def start():
            check = services.restore_check_request(requested_by=request.user)
            copy = f"backup #{check.backup_id}" if check.backup_id else "no copy (it will fail)"
            return f"Restore check #{check.pk} of {copy} is queued: the worker takes it now."

        return self._operate(request, start)
