"""bench/engine.py runs, and prints what it promises, side by side in one run (tiny sizes:
this checks the benchmark works, not how fast anything is)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--seconds", "0.01", "--runs", "1"]


def test_the_engine_benchmark_prints_engine_and_matcher_beside_their_baselines_and_goals():
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
    # Both held-out sets, each with its figures.
    assert "multilingual_eval.json: 3 intents + built-ins" in out
    assert "multilingual_eval_2.json: 3 intents + built-ins" in out
    assert number("model load (encoder + language id)") > 0
    old, new = number("old matcher (baseline) on one core"), number("classifications on one core")
    assert old > 0 and new > 0 and number("the same texts again") > 0
    assert abs(number("ratio new / old") - new / old) <= 0.001 + 0.001 * new / old
    assert "goal >= 5,000" in out and "goal >= 300, each text new" in out
    # Per language and overall: the old matcher's figure and the new one's, beside the goal.
    for language in ("all", "en", "es", "pt"):
        found = re.findall(rf"^  {language} \(\d+ in scope, \d+ out of scope\)$", out, re.M)
        assert len(found) == 2
    for label in ("top-1", "right and accepted", "out of scope rejected"):
        rows = re.findall(rf"^    {label}\s+([\d.]+)\s+([\d.]+)\s+>= 0\.\d+$", out, re.M)
        assert len(rows) == 8, out  # four rows (all, en, es, pt) for each of the two sets
        assert all(0.0 <= float(v) <= 1.0 for pair in rows for v in pair)
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met")


def test_the_engine_benchmark_prints_the_development_sets_apart_with_dev():
    """--dev adds the two development sets (the ones the matcher is tuned on) after the
    held-out ones, under their own heading, outside the goal."""
    run = subprocess.run(
        [sys.executable, "bench/engine.py", "--dev", *SMALL, "--intents", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    held_out, dev = out.split("Development sets (tuned on: not held out, not counted in the goal)")
    assert "multilingual_eval.json: 2 intents" in held_out
    assert "multilingual_eval_2.json: 2 intents" in held_out
    assert "multilingual_dev.json: 2 intents" in dev
    assert "multilingual_dev_2.json: 2 intents" in dev
    assert "multilingual_dev" not in held_out
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met")
