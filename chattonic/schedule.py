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
    Periodic(
        name="Send the operators' pending notices",
        task="chattonic.core.tasks.operator_notices_send",
        every_seconds=60,
        description="Breach and backup notices whose mail failed are retried until sent.",
    ),
    Periodic(
        name="Purge sandbox conversations",
        task="conversations.tasks.sandbox_purge",
        crontab={"minute": "45", "hour": "4"},
        description="The dashboard's test chats are deleted after 7 days.",
    ),
    Periodic(
        name="Agents' presence sweep",
        task="agents.tasks.presence_sweep",
        every_seconds=30,
        description="Agents whose console stopped sending heartbeats go offline.",
    ),
    Periodic(
        name="Back up the database",
        task="backups.tasks.backup_create_scheduled",
        crontab={"minute": "0", "hour": "3"},
        description="Daily copy into BACKUP_DIR, verified, the last BACKUP_KEEP kept.",
    ),
    Periodic(
        name="Restore check of the newest backup",
        task="backups.tasks.restore_check_scheduled",
        crontab={"minute": "30", "hour": "4", "day_of_week": "0"},
        description="Weekly: restores the newest copy into a scratch database and compares it.",
    ),
    Periodic(
        name="Support: flag tickets past their first-response target",
        task="support.tasks.support_breaches_flag",
        every_seconds=300,
        description="Flags each breached ticket once and emails the operators.",
    ),
    Periodic(
        name="Support: carry pending ticket changes to Trello",
        task="support.tasks.trello_outbox_catch_up",
        every_seconds=30,
        description="The Trello mirror's catch-up after back-offs and outages.",
    ),
    Periodic(
        name="Channels: queue again what a lost task left behind",
        task="messaging.tasks.channel_sweep",
        every_seconds=60,
        description="Inbound channel messages never handled for a minute.",
    ),
    Periodic(
        name="Channels: queue the replies whose wait ended",
        task="messaging.tasks.sends_due_queue",
        every_seconds=1,
        description="Sends whose back-off, rate-limit or status wait ended (the due set in "
        "Redis; no wait is left on the broker, docs/channels.md).",
    ),
    Periodic(
        name="Channels: queue the replies that are due",
        task="messaging.tasks.message_send_sweep",
        every_seconds=3,
        description="The safety net: each conversation's next reply once it is due and its "
        "task was lost, or its worker died (docs/channels.md).",
    ),
    Periodic(
        name="Regions: copy the other regions' identity rows",
        task="chattonic.regions.tasks.identities_pull",
        every_seconds=300,
        description="Tenants, staff, memberships and API keys' public parts; nothing else.",
    ),
    Periodic(
        name="Bots: train again the versions whose training was lost",
        task="bots.tasks.bot_versions_train_stuck",
        every_seconds=60,
        description="A version still training two minutes after it was published (its task "
        "never reached a worker) is queued again.",
    ),
    Periodic(
        name="Statistics: rebuild today and yesterday",
        task="stats.tasks.stats_rebuild_recent",
        every_seconds=300,
        description="The dashboard's and the API's statistics lag the conversations by 5 min.",
    ),
]
