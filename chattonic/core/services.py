"""Platform-wide writes: the installed periodic schedule."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from chattonic.schedule import PERIODIC_TASKS, Periodic


@transaction.atomic
def schedule_install(periodic_tasks: list[Periodic] = PERIODIC_TASKS) -> list[PeriodicTask]:
    """Create or update beat's rows for every declared periodic task (keeps ``enabled``)."""
    installed = []
    for periodic in periodic_tasks:
        defaults = {"task": periodic.task, "description": periodic.description}
        if periodic.every_seconds:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=periodic.every_seconds, period=IntervalSchedule.SECONDS
            )
            defaults.update(interval=interval, crontab=None)
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(
                minute=periodic.crontab.get("minute", "*"),
                hour=periodic.crontab.get("hour", "*"),
                day_of_week=periodic.crontab.get("day_of_week", "*"),
                day_of_month=periodic.crontab.get("day_of_month", "*"),
                month_of_year=periodic.crontab.get("month_of_year", "*"),
                timezone=settings.TIME_ZONE,
            )
            defaults.update(crontab=crontab, interval=None)
        task, _ = PeriodicTask.objects.update_or_create(name=periodic.name, defaults=defaults)
        installed.append(task)
    return installed
