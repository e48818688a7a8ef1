"""The defaults the pages give (docs/*.md) are the ones a deployment gets when its environment
says nothing: the settings are read in a fresh process with an empty environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

# setting (as Python reads it) -> (the documented value, where the docs say it)
DOCUMENTED = {
    "AXES_FAILURE_LIMIT": (5, "security.md: LOGIN_FAILURE_LIMIT (5)"),
    "AXES_COOLOFF_TIME": (15 * 60, "security.md: LOGIN_COOLOFF_MINUTES (15)"),
    "AXES_DISABLE_ACCESS_LOG": (True, "security.md: sign-ins are not recorded row by row"),
    "SESSION_COOKIE_AGE": (14 * 24 * 3600, "security.md: the session lifetime, two weeks"),
    "DATA_UPLOAD_MAX_MEMORY_SIZE": (int(2.5 * 1024 * 1024), "api.md, security.md: 2.5 MB"),
    "AGENT_HEARTBEAT_TIMEOUT": (60, "agents.md: AGENT_HEARTBEAT_TIMEOUT (60 s)"),
    "BACKUP_KEEP": (30, "restore.md: BACKUP_KEEP (30)"),
    "BACKUP_DIR": ("<var>/backups", "restore.md: the default, var/backups"),
    "WEBCHAT_MESSAGES_PER_10S": (10, "webchat.md"),
    "WEBCHAT_MAX_CONNECTIONS_PER_IP": (50, "webchat.md"),
    "WEBCHAT_LANE_PROCESSES": (1, "webchat.md"),
    "WEBCHAT_LANE_BATCH_TIMEOUT": (30, "webchat.md"),
    "SUPPORT_DAYS": (["mon", "tue", "wed", "thu", "fri"], "support.md"),
    "SUPPORT_HOURS_START": ("09:00", "support.md"),
    "SUPPORT_HOURS_END": ("18:00", "support.md"),
    "SUPPORT_TIME_ZONE": ("-03:00", "support.md"),
    "SUPPORT_HOLIDAYS": ([], "support.md"),
    "SUPPORT_INTERRUPTION_TARGET_HOURS": (6, "support.md"),
    "SUPPORT_RESPONSE_TARGET_HOURS": (6, "support.md"),
    "TRELLO_REQUESTS_PER_10S": (90, "support.md"),
    "TRELLO_API_BASE": ("https://api.trello.com", "support.md"),
    "CHATTONIC_REGION": ("us-central", "regions.md"),
    "NLU_WARM_BOTS": (50, "README.md: NLU_WARM_BOTS (50)"),
    "API_RATE_PER_MINUTE": (600, "README.md: API_RATE_PER_MINUTE (600)"),
    "CHANNEL_CACHE_SECONDS": (5, "channels.md: Settings"),
    "CHANNEL_HANDLE_MAX_FAILURES": (3, "channels.md: Settings"),
    "CHANNEL_SEND_TIMEOUT": (10, "channels.md: Settings"),
    "CHANNEL_SEND_MAX_ATTEMPTS": (8, "channels.md: Settings, and Retries (default 8)"),
    "CHANNEL_RATE_LIMIT_MAX_SLEEP_MS": (1000, "channels.md: Settings"),
    "CHANNEL_SETTLE_SECONDS": (15, "channels.md: Settings, and Possibly sent (15)"),
    "CHANNEL_SEND_REQUEUE_SECONDS": (10, "channels.md: Settings"),
    "CELERY_BROKER_TRANSPORT_OPTIONS.visibility_timeout": (
        35,
        "channels.md: CELERY_VISIBILITY_TIMEOUT, 35 s",
    ),
    "CELERY_TASK_REJECT_ON_WORKER_LOST": (True, "channels.md: A worker that dies mid-send"),
    "CELERY_WORKER_PREFETCH_MULTIPLIER": (1, "channels.md: a prefetch of 1"),
}

READ = """
import json
from datetime import timedelta
from django.conf import settings
def plain(value):
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if str(value).startswith(str(settings.VAR_DIR)):
        return "<var>" + str(value)[len(str(settings.VAR_DIR)):]
    return value
def read(name):  # SETTING, or SETTING.key of a dict
    head, _, key = name.partition(".")
    value = getattr(settings, head)
    return value[key] if key else value
print(json.dumps({name: plain(read(name)) for name in %r}))
"""


def fresh_process(tmp_path, script: str | None = None, **env) -> subprocess.CompletedProcess:
    """``script`` (by default: print the DOCUMENTED settings) in a new process whose
    environment holds only ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script or READ % sorted(DOCUMENTED)],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "DEBUG": "1", "CHATTONIC_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_empty_environment_gets_the_documented_defaults(tmp_path):
    result = fresh_process(tmp_path)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    wrong = {
        name: f"{got[name]!r}, the docs say {value!r} ({where})"
        for name, (value, where) in DOCUMENTED.items()
        if got[name] != value
    }
    assert not wrong, wrong


@pytest.mark.parametrize("old", ["BOT_HTTP_ALLOW_PRIVATE", "API_CHANNEL_ALLOW_PRIVATE_WEBHOOKS"])
def test_a_former_private_address_switch_stops_the_start(tmp_path, old):
    """security.md: the switches are gone; one still set to true fails the start, pointing to
    OUTBOUND_ALLOWED_HOSTS."""
    result = fresh_process(tmp_path, **{old: "true"})
    assert result.returncode != 0
    assert f"{old} is gone" in result.stderr and "OUTBOUND_ALLOWED_HOSTS" in result.stderr


def test_postgresql_gets_a_pool_of_20_and_prepared_inserts_by_default(tmp_path):
    """README.md: DATABASE_POOL, DATABASE_POOL_SIZE: on, 20; DATABASE_PREPARED: on (read
    from the settings alone: nothing connects)."""
    script = (
        "import json; from django.conf import settings; "
        "o = settings.DATABASES['default']['OPTIONS']; "
        "print(json.dumps([o.get('pool', {}).get('max_size'), o.get('prepare_threshold')]))"
    )
    result = fresh_process(tmp_path, script, DATABASE_URL="postgres://nobody@127.0.0.1:9/never")
    assert result.returncode == 0, result.stderr
    pool, prepared = json.loads(result.stdout.strip().splitlines()[-1])
    assert pool == 20 and prepared is not None


def test_the_documented_constants_hold():
    """The figures the pages give that are constants, not settings."""
    from bots.engine.runtime import MAX_NODE_VISITS
    from bots.engine.validation import MAX_ERRORS
    from chattonic.core.layers import DEFAULT_CAPACITY
    from messaging.delivery import BACKOFF_BASE, BACKOFF_CAP, _lease

    assert DEFAULT_CAPACITY == 1000  # README.md: at most 1,000 undelivered messages
    assert MAX_ERRORS == 100  # flows.md: every error is reported at once (up to 100)
    assert MAX_NODE_VISITS == 250  # flows.md: at most 250 nodes without waiting
    assert (BACKOFF_BASE, BACKOFF_CAP) == (2.0, 900.0)  # channels.md: 2 s ... up to 15 minutes
    # channels.md: on SQLite the lease is twice CHANNEL_SEND_TIMEOUT plus 5 s (25 s with the
    # default 10, which DOCUMENTED holds)
    assert _lease().total_seconds() == 2 * settings.CHANNEL_SEND_TIMEOUT + 5


def test_an_agent_takes_five_conversations_unless_told_otherwise():
    """agents.md: capacity (default 5)."""
    from agents.models import AgentProfile

    assert AgentProfile._meta.get_field("capacity").default == 5


# task -> (seconds between runs, where the docs say it)
DOCUMENTED_PERIODS = {
    "agents.tasks.presence_sweep": (30, "agents.md: the presence sweep, every 30 s"),
    "support.tasks.support_breaches_flag": (300, "support.md: every 5 minutes"),
    "support.tasks.trello_outbox_catch_up": (30, "support.md: every 30 seconds"),
    "chattonic.core.tasks.operator_notices_send": (60, "support.md, security.md: every minute"),
    "stats.tasks.stats_rebuild_recent": (300, "api.md: every 5 min"),
    "chattonic.regions.tasks.identities_pull": (300, "regions.md: every 5 minutes"),
}


@pytest.mark.django_db
def test_the_periodic_tasks_run_as_often_as_the_docs_say():
    from django_celery_beat.models import PeriodicTask

    installed = {
        task.task: task.interval.every * {"seconds": 1, "minutes": 60}[task.interval.period]
        for task in PeriodicTask.objects.filter(task__in=DOCUMENTED_PERIODS).select_related(
            "interval"
        )
    }
    wrong = {
        task: f"every {installed.get(task)} s, the docs say {seconds} s ({where})"
        for task, (seconds, where) in DOCUMENTED_PERIODS.items()
        if installed.get(task) != seconds
    }
    assert not wrong, wrong
