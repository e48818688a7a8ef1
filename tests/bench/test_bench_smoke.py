"""Every benchmark in bench/ runs in the suite at tiny sizes, so none can rot unnoticed
(issue 18: bench/stats.py had broken on a fresh database and nothing ran it). The timings
of these runs mean nothing; each must end with its verdict line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import dj_database_url
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
TESTS = ROOT / "tests"
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def run(*args: str, env: dict | None = None) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,  # a safety net for a hung process, not a timing assertion
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_every_benchmark_has_a_smoke_run_in_the_suite():
    """A benchmark is a bench/*.py that runs as a script; each is named by a test."""
    tests = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py"))
    benches = [p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text()]
    assert "stats.py" in benches and "backup.py" in benches
    missing = [name for name in benches if f"bench/{name}" not in tests]
    assert missing == [], f"benchmarks without a smoke run in tests/: {missing}"


def test_the_stats_bench_runs_on_a_fresh_database():
    out = run("bench/stats.py", "--smoke")
    assert "200 messages in 20 conversations" in out
    assert re.search(r"ratio stats API / bare count: [\d.]+ \(goal <= 1\.00\)", out), out
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met")


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="bench/backup.py is PostgreSQL's (pg_dump)")
def test_the_backup_bench_runs_on_a_fresh_database():
    db = settings.DATABASES["default"]
    name = f"{dj_database_url.parse(settings.DATABASE_URL)['NAME']}_bench_{uuid.uuid4().hex[:6]}"
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    out = run(
        "bench/backup.py",
        "--messages", "2000", "--conversations", "20", "--rounds", "1", "--no-encrypted",
        env={"BENCH_DATABASE_URL": url},
    )  # fmt: skip
    assert "raw total" in out and "ratio" in out
    assert out.rstrip().splitlines()[-1] in ("goal met", "goal not met")
