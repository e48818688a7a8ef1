"""The suite's two passes (.ci/run, README "Tests"): a test marked ``embedded_only`` runs in
the embedded pass and is skipped where DATABASE_URL is set; every other test runs in both.
Each pass runs on two cores (tests/parallel.py): what each xdist worker keeps to itself."""

from __future__ import annotations

import os

import pytest

from tests import conftest, parallel


class Item:
    def __init__(self, *markers: str):
        self.markers = set(markers)
        self.added: list = []

    def get_closest_marker(self, name):
        return name if name in self.markers else None

    def add_marker(self, marker):
        self.added.append(marker)


@pytest.mark.parametrize(
    ("database_url", "skipped"),
    [("", []), ("postgres://postgres@127.0.0.1:5432/test", ["skip"])],
)
def test_an_embedded_only_test_runs_in_the_embedded_pass_only(monkeypatch, database_url, skipped):
    monkeypatch.setenv("DATABASE_URL", database_url)
    embedded_only, other = Item("embedded_only", "processes"), Item("processes")

    conftest.pytest_collection_modifyitems(None, [embedded_only, other])

    assert [marker.name for marker in embedded_only.added] == skipped
    assert other.added == []


# --- Two cores (tests/parallel.py) -------------------------------------------------------------


def test_each_xdist_worker_gets_its_own_var_directory_and_redis_database(monkeypatch, tmp_path):
    seen = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("CHATTONIC_VAR_DIR", str(tmp_path))
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/9")
        parallel._isolate_worker()
        seen[worker] = (os.environ["CHATTONIC_VAR_DIR"], os.environ["REDIS_URL"])
    assert seen == {
        "gw0": (str(tmp_path / "xdist-gw0"), "redis://127.0.0.1:6379/9"),
        "gw1": (str(tmp_path / "xdist-gw1"), "redis://127.0.0.1:6379/10"),
    }


def test_outside_xdist_nothing_changes(monkeypatch, tmp_path):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("CHATTONIC_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("REDIS_URL", raising=False)
    parallel._isolate_worker()
    assert os.environ["CHATTONIC_VAR_DIR"] == str(tmp_path)
    assert "REDIS_URL" not in os.environ


def test_a_worker_never_takes_the_regions_tests_redis_databases():
    assert parallel.redis_url_for("redis://h:6379/12", 1) == "redis://h:6379/13"
    assert parallel.redis_url_for("redis://h:6379", 1) == "redis://h:6379/1"
    with pytest.raises(pytest.UsageError, match="database 14"):
        parallel.redis_url_for("redis://h:6379/13", 1)


def test_the_tests_that_start_processes_run_on_one_worker_in_turn():
    browser, server, fault, plain = Item("browser"), Item("processes"), Item("faults"), Item()

    parallel.pytest_collection_modifyitems(None, [browser, server, fault, plain])

    for item in (browser, server, fault):
        assert [(m.name, m.args) for m in item.added] == [("xdist_group", ("processes",))]
    assert plain.added == []


def test_this_run_uses_what_its_worker_was_given():
    """Under xdist, the settings Django read are this worker's (read before they loaded)."""
    from django.conf import settings

    index = parallel.worker_index()
    if index is None:
        pytest.skip("not under xdist (make test runs it there)")
    assert settings.VAR_DIR.name == f"xdist-gw{index}"
    assert settings.EMBEDDED_REDIS_SOCKET.parent == settings.VAR_DIR
