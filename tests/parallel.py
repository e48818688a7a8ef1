"""The suite on both cores: ``make test`` runs it in two pytest-xdist workers (``-n``).

Loaded with ``-p tests.parallel`` (pyproject.toml), before Django reads its settings, so that
in an xdist worker (``PYTEST_XDIST_WORKER``: gw0, gw1, ...) this can give it what two workers
must not share:

- its own var directory (``CHATTONIC_VAR_DIR``/xdist-gwN): the SQLite test database, the
  embedded Redis's socket, backups and logs;
- with ``REDIS_URL``, its own Redis database (the URL's number plus N): the cache, the
  Celery broker's queues and the channel layer (whose pub/sub channels, which ignore the
  database, hold its number: chattonic.settings.channel_layer_prefix).

pytest-django gives each worker its own test database (``test_<name>_gwN``). The tests that
start processes, drive the browser or run a bench (``SERIAL_MARKERS``) all run on one worker,
in turn (``--dist loadgroup``): their processes share the run's base database (the benches')
and fixed names (tests/regions/deployments.py), and their timings want a core to themselves
as far as the other worker's in-process tests let them.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERIAL_MARKERS = ("processes", "browser", "faults")
GROUP = "processes"


def worker_index() -> int | None:
    """This xdist worker's number (gw0: 0); None outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker.removeprefix("gw")) if worker.startswith("gw") else None


def redis_url_for(url: str, index: int) -> str:
    """``url`` with its database number moved up by ``index`` (redis://h:p/9, 1: /10)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + index
    if number > 13:  # 14 and 15 are tests/regions/deployments.py's
        raise pytest.UsageError(f"REDIS_URL {url}: worker {index} would use database {number}")
    return urlunsplit(parts._replace(path=f"/{number}"))


def _isolate_worker() -> None:
    index = worker_index()
    if index is None:
        return
    base = os.environ.get("CHATTONIC_VAR_DIR") or str(ROOT / "var")
    os.environ["CHATTONIC_VAR_DIR"] = str(Path(base) / f"xdist-gw{index}")
    if os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = redis_url_for(os.environ["REDIS_URL"], index)


_isolate_worker()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Group the serial tests (before xdist's own hook reads the groups)."""
    serial = pytest.mark.xdist_group(GROUP)
    for item in items:
        if any(item.get_closest_marker(name) for name in SERIAL_MARKERS):
            item.add_marker(serial)
