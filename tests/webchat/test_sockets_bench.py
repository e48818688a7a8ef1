"""bench/sockets.py still runs end to end and prints each figure it promises (a tiny run
against this test run's database and Redis; no timing is asserted)."""

from __future__ import annotations

import re
import subprocess

import pytest

from conversations.models import Conversation
from tests import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_sockets_bench_runs_and_prints_its_figures_and_verdict():
    result = subprocess.run(
        processes.python("bench/sockets.py", "--smoke"),
        cwd=processes.ROOT,
        env=processes.test_database_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^echo consumer\s+\d+\s+-?[\d.]+$", out, re.M), out
    assert re.search(r"^web chat socket\s+\d+\s+-?[\d.]+$", out, re.M), out
    assert re.search(r"active visitor's p99: [\d.]+ ms alone, [\d.]+ ms beside 20 idle", out), out
    assert re.search(r"opening [\d.]+ \(goal >= 0.50\), memory per idle socket -?[\d.]+", out)
    assert out.strip().splitlines()[-1] in ("goal met", "goal not met"), out
    assert not Conversation.objects.exists()  # the bench cleans up after itself
