"""Celery's lines about each run of the frequent housekeeping (beat's "Sending due task", the
worker's "received" and "succeeded") are left out of the worker's and beat's output; their
failures, and every other task's lines, stay. (make run's output shows it end to end:
tests/chattonic/test_make_run.py.)"""

import logging

from celery.app import trace

from chattonic import celery as chattonic_celery
from chattonic.schedule import PERIODIC_TASKS


class _Kept(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _record(name: str, level: int, msg: str, args) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def _run_lines(task: str) -> list[logging.LogRecord]:
    """Celery's own lines about one run of ``task``, as its code logs them."""
    context = {"name": task, "id": "abc", "runtime": 0.001, "return_value": None}
    return [
        _record("celery.beat", logging.INFO, "Scheduler: Sending due task %s (%s)", ("x", task)),
        _record("celery.worker.strategy", logging.INFO, trace.LOG_RECEIVED, context),
        _record("celery.app.trace", logging.INFO, trace.LOG_SUCCESS, context),
    ]


def test_the_frequent_housekeepings_runs_are_quiet_and_the_rest_is_kept():
    handler = _Kept()
    root = logging.Logger("root-of-a-worker")
    root.addHandler(handler)
    chattonic_celery._quiet_housekeeping(logger=root)  # as after_setup_logger calls it

    frequent = "messaging.tasks.sends_due_queue"  # every second
    rare = "stats.tasks.stats_rebuild_recent"  # every 5 minutes
    on_demand = "bots.tasks.bot_http_request"
    for task in (frequent, rare, on_demand):
        for record in _run_lines(task):
            handler.handle(record)
    failure = {"name": frequent, "id": "abc", "description": "raised unexpected", "exc": "boom"}
    handler.handle(_record("celery.app.trace", logging.ERROR, trace.LOG_FAILURE, failure))
    handler.handle(_record("messaging.tasks", logging.INFO, f"{frequent}: queued 3", ()))

    assert [line for line in handler.lines if frequent in line] == [
        f"Task {frequent}[abc] raised unexpected: boom",
        f"{frequent}: queued 3",  # what the task logs itself
    ]
    for task in (rare, on_demand):
        assert f"Task {task}[abc] succeeded in 0.001s: None" in handler.lines
        assert any(task in line and "Sending due task" in line for line in handler.lines)


def test_quiet_means_due_every_minute_or_more_often():
    quiet = chattonic_celery.quiet_tasks()
    assert "messaging.tasks.sends_due_queue" in quiet
    assert "messaging.tasks.message_send_sweep" in quiet
    assert "agents.tasks.presence_sweep" in quiet
    daily = [p.task for p in PERIODIC_TASKS if p.crontab]
    assert daily and not quiet & set(daily)
    assert "stats.tasks.stats_rebuild_recent" not in quiet
