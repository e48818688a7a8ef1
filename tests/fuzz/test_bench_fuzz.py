"""bench/fuzz.py runs and prints what it promises (a smoke run of a few inputs against a real
server, on the embedded defaults in a scratch directory): counts by door and status, the
failures found, and its verdict."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.processes, pytest.mark.embedded_only]


def test_the_fuzz_bench_prints_counts_by_door_and_status_and_its_verdict(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY")
    }
    # As in production: DEBUG off (Django's debug pages are HTML).
    env.update({"CHATTONIC_VAR_DIR": str(tmp_path), "DEBUG": "0"})
    run = subprocess.run(
        [sys.executable, "bench/fuzz.py", "--inputs", "30", "--seed", "15"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    doors = dict(re.findall(r"^(webhooks|rest|widget|console)\s+(\d+)\s", out, re.MULTILINE))
    assert doors == {"webhooks": "12", "rest": "9", "widget": "6", "console": "3"}, out
    assert re.search(r"^webhooks\s+12\s+.*\b(200|400): \d+", out, re.MULTILINE), out
    assert re.search(r"answers >= 500: \d+; hangs or answers over 2 s: \d+;", out), out
    assert out.rstrip().splitlines()[-1] == "goal met", out
