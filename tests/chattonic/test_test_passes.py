"""The suite's two passes (.ci/run, README "Tests"): a test marked ``embedded_only`` runs in
the embedded pass and is skipped where DATABASE_URL is set; every other test runs in both."""

from __future__ import annotations

import pytest

from tests import conftest


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
