"""A smoke run of bench/agents.py with a few messages: it runs end to end on this run's
database and channel layer, every message reaches every socket, and it prints its figures
beside the baseline. (No timing is asserted: the bench prints the figures.)"""

from __future__ import annotations

import re
import subprocess

import pytest

from conversations.models import Conversation
from tests.processes import ROOT, python
from tests.processes import test_database_env as database_env

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_agents_bench_runs_and_delivers_everything():
    result = subprocess.run(
        python(
            "bench/agents.py",
            "--messages",
            "5",
            "--agents",
            "3",
            "--warmup",
            "1",
            "--lost-after",
            "20",
        ),
        cwd=ROOT,
        env=database_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    rows = dict(re.findall(r"^(baseline|agents|echo)\s+[\d.]+\s+[\d.]+\s+([\d.]+)%", output, re.M))
    assert rows == {"baseline": "100.0", "agents": "100.0", "echo": "100.0"}, output
    assert re.search(r"ratio agents/baseline: p50 [\d.]+x, p99 [\d.]+x", output), output
    assert "5 messages to 3 sockets each" in output
    # The bench cleans up after itself.
    assert not Conversation.objects.exists()
