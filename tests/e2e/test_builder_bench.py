"""bench/builder.py runs in its smoke size and prints what it promises: the editor and bare
Drawflow side by side, their ratios, and the verdict (tiny sizes: this checks the benchmark
works, not how fast anything is)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def test_the_builder_benchmark_compares_the_editor_with_bare_drawflow(_browser_available, tmp_path):
    run = subprocess.run(
        [sys.executable, "bench/builder.py", "--nodes", "20", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CHATTONIC_VAR_DIR": str(tmp_path)},
        timeout=600,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "20-node flow" in out
    for label in ("open: navigation to drawn (ms)", "drag: move to its frame, p95 (ms)"):
        match = re.search(re.escape(label) + r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
        assert match, f"{label!r} missing from:\n{out}"
        editor, bare, ratio = (float(g) for g in match.groups())
        assert editor > 0 and bare > 0
        assert abs(ratio - editor / bare) <= 0.01 + 0.01 * ratio
    assert out.strip().splitlines()[-1] in ("goal met", "goal not met")
