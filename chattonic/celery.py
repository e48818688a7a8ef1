"""The Celery application: the worker and beat processes of every deployment."""

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")

app = Celery("chattonic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Celery's own INFO lines about each run of a task: beat's "Sending due task", the worker's
# "received" and "succeeded".
RUN_LOGGERS = ("celery.beat", "celery.worker.strategy", "celery.app.trace")
# Housekeeping that runs this often or more (chattonic.schedule) logs its runs only when
# they fail: three lines a second of sends_due_queue buried everything else in make run's
# output and in a worker's log.
QUIET_EVERY_SECONDS = 60


class QuietHousekeeping(logging.Filter):
    """Drops Celery's INFO lines about the runs of the frequent periodic tasks (their
    failures are ERRORs, kept; what a task logs itself, kept)."""

    def __init__(self, tasks: set[str]):
        super().__init__()
        self.tasks = tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or record.name not in RUN_LOGGERS:
            return True
        message = record.getMessage()
        return not any(task in message for task in self.tasks)


def quiet_tasks() -> set[str]:
    from chattonic.schedule import PERIODIC_TASKS

    return {
        p.task
        for p in PERIODIC_TASKS
        if p.every_seconds is not None and p.every_seconds <= QUIET_EVERY_SECONDS
    }


@after_setup_logger.connect
def _quiet_housekeeping(logger, **kwargs):
    """On the root logger's handlers, as Celery set them up (worker and beat alike)."""
    quiet = QuietHousekeeping(quiet_tasks())
    for handler in logger.handlers:
        handler.addFilter(quiet)
