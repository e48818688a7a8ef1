"""bench/engine.py runs, and prints what it promises, side by side in one run (tiny sizes:
this checks the benchmark works, not how fast anything is)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_benchmark_prints_engine_baseline_classifications_and_accuracy():
    run = subprocess.run(
        [sys.executable, "bench/engine.py", "--seconds", "0.01", "--runs", "1", "--intents", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout

    def number(label: str) -> float:
        match = re.search(re.escape(label) + r"\s+([\d,.]+)", out)
        assert match, f"{label!r} missing from:\n{out}"
        return float(match.group(1).replace(",", ""))

    assert "100-node flow" in out
    baseline, engine = number("no-op step (baseline)"), number("engine step")
    assert baseline > 0 and engine > 0
    assert abs(number("ratio engine / baseline") - engine / baseline) <= 0.001
    assert "3 intents + built-ins" in out
    assert number("classifications on one core") > 0
    assert "goal >= 5,000" in out
    for label in ("test, in scope, top intent", "out of scope rejected"):
        assert 0.0 <= number(label) <= 1.0
