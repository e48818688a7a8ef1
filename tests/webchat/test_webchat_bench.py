"""bench/webchat.py still runs and prints its three phases (echo, stored echo, web chat), in
alternating rounds with their medians, its ratios against the goals and its verdict: its smoke
run against this test run's database and Redis."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests import processes

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_webchat_bench_runs_and_stores_every_message_once():
    result = subprocess.run(
        processes.python("bench/webchat.py", "--smoke"),
        cwd=processes.ROOT,
        env=processes.test_database_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^echo consumer\s+\d+", out, re.M), out
    assert re.search(r"^stored echo\s+\d+", out, re.M), out
    assert len(re.findall(r"^web chat \+ bot\s+\d+", out, re.M)) == 2, out
    assert re.search(r"^median echo consumer\s+\d+", out, re.M), out
    assert re.search(r"^median web chat \+ bot\s+\d+", out, re.M), out
    assert re.search(r"each round's ratios \(throughput; p99\): [\d.]+; [\d.]+, [\d.]+; ", out)
    assert re.search(
        r"ratio web chat / echo \(medians\): throughput [\d.]+ \(goal >= 0\.60\), "
        r"p99 [\d.]+ \(goal <= 1\.50\)",
        out,
    ), out
    assert re.search(r"ratio stored echo / echo: throughput \d+\.\d\d", out), out
    assert "stored: 12 visitor messages, 12 distinct client ids, 12 sent" in out
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met"), out
