"""bench/webhooks.py runs and prints what it promises, both endpoints side by side in one run
(tiny sizes, on the embedded defaults in a scratch directory: this checks the benchmark
works, not how fast anything is)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import printed_ratio_holds

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.processes, pytest.mark.embedded_only]


def test_the_webhooks_benchmark_prints_both_throughputs_the_ratio_and_ack_latencies(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update({"CHATTONIC_VAR_DIR": str(tmp_path), "DEBUG": "1"})
    run = subprocess.run(
        [
            sys.executable,
            "bench/webhooks.py",
            "--rates",
            "5,10",
            "--seconds",
            "0.5",
            "--concurrency",
            "2",
            "--capacity-seconds",
            "0.5",
            "--users",
            "3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout

    def numbers(label: str) -> list[str]:
        match = re.search(re.escape(label) + r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
        assert match, f"{label!r} missing from:\n{out}"
        return list(match.groups())

    bare, hook = numbers("bare DRF view (one row)"), numbers("WhatsApp webhook")
    assert float(bare[0]) > 0 and float(hook[0]) > 0
    ratio = re.search(r"ratio webhook / bare\s+([\d.]+) %", out).group(1)
    assert printed_ratio_holds(ratio, hook[0], bare[0], scale=100), (ratio, hook[0], bare[0])
    rows = re.findall(r"^\s+(\d+) \|", out, re.MULTILINE)
    assert rows == ["5", "10"]
    assert "highest rate the webhook sustained" in out
    stored = re.search(r"stored: (\d+) messages, (\d+) distinct ids, (\d+) acknowledged", out)
    assert stored and stored.group(1) == stored.group(2) == stored.group(3)
