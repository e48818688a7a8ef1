"""bench/faults.py runs and prints what it promises (tiny sizes, SQLite and a Redis of its
own in a scratch directory: this checks the benchmark works, not the platform's limits)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.processes, pytest.mark.faults, pytest.mark.embedded_only]


def test_the_faults_benchmark_prints_once_twice_never_delay_and_order(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update({"CHATTONIC_VAR_DIR": str(tmp_path), "DEBUG": "1"})
    run = subprocess.run(
        [sys.executable, "bench/faults.py", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-3000:]
    for line in (
        "sent exactly once:",
        "sent twice:",
        "never sent: 0",
        "worst delay:",
        "out of order: 0 conversations",
        "median delay against the baseline:",
    ):
        assert line in out, out
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met")
