"""Who writes messages: the receive service (conversations.receive) and nothing else.

``only_the_receive_service_writes_messages()`` watches every statement Django's connections
run and records each INSERT into the message table whose call stack does not pass through
the service; ``message_writers()`` scans the source for the ways to insert a message."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from django.db import connections

from conversations.models import Message

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "conversations.receive"
# The project's own code: the apps, not the tests' factories or the benches' fixtures.
APPS = ("agents", "backups", "bots", "chattonic", "conversations", "support")


def _inserts_messages(sql: str) -> bool:
    table = re.escape(Message._meta.db_table)
    return re.match(rf'\s*INSERT\s+INTO\s+"?{table}"?[\s(]', sql, re.IGNORECASE) is not None


def _through_the_service() -> str | None:
    """None when the running code came through the service; else the first caller that is
    not Django's (the module that wrote)."""
    frame = sys._getframe(2)
    caller = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module == SERVICE or module.startswith(SERVICE + "."):
            return None
        if caller is None and not module.startswith(("django.", "factory.", __name__)):
            caller = f"{module}:{frame.f_lineno}"
        frame = frame.f_back
    return caller or "?"


@contextmanager
def only_the_receive_service_writes_messages() -> Iterator[list[str]]:
    """Within the block, every INSERT into the message table that did not come through the
    service is recorded (the list yielded), and fails the block."""
    writers: list[str] = []

    def watch(execute, sql, params, many, context):
        if _inserts_messages(sql):
            writer = _through_the_service()
            if writer is not None:
                writers.append(writer)
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for connection in connections.all():
            stack.enter_context(connection.execute_wrapper(watch))
        yield writers
    assert not writers, f"messages inserted outside {SERVICE}: {writers}"


# The ways to insert a message: the ORM's, our plain SQL's, and raw SQL naming the table.
_PATTERNS = [
    re.compile(r"\bMessage\.objects\.(create|bulk_create|get_or_create|update_or_create)\("),
    re.compile(r"(?<!class )\bMessage\("),  # an instance, to save()
    re.compile(r"\b(row_insert|rows_insert|insert_statements)\(\s*Message\b"),
    re.compile(r"INSERT\s+INTO\s+\S*" + re.escape(Message._meta.db_table), re.IGNORECASE),
    re.compile(r"\bMessageFactory\b"),
]


def message_writers() -> list[str]:
    """``path:line`` of every line of the apps' source that inserts a message, outside the
    service's package and the migrations."""
    found = []
    service = ROOT / SERVICE.replace(".", "/")
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if path.is_relative_to(service) or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if any(pattern.search(line) for pattern in _PATTERNS):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found
