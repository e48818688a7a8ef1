"""Every periodic task of the platform, declared here and installed into django-celery-beat.

``schedule_install`` runs after every ``migrate``, so a fresh database has the schedule;
an operator can pause a task in the dashboard, and that choice survives later migrations.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    crontab: dict[str, str] = field(default_factory=dict)
    every_seconds: int | None = None
    description: str = ""


PERIODIC_TASKS: list[Periodic] = [
    Periodic(
        name="Clear expired dashboard sessions",
        task="chattonic.core.tasks.sessions_clear",
        crontab={"minute": "15", "hour": "4"},
        description="Deletes expired sessions, as Django's clearsessions does.",
    ),
]
