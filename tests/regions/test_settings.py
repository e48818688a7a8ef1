"""docs/regions.md, "A dedicated deployment": a region's code is 2 to 8 lowercase letters or
digits (a letter first), its number 0 to 899, each region's own; a settings error stops the
start otherwise. Ids of region 899's block stay exact in JavaScript."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

US = {"url": "https://us.chat.example.com", "code": "us", "number": 0}


def started(tmp_path, regions: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.REGIONS['acme-private'])",
        ],
        cwd=settings.BASE_DIR,
        env={
            "PATH": os.environ["PATH"],
            "DEBUG": "1",
            "CHATTONIC_VAR_DIR": str(tmp_path),
            "CHATTONIC_REGIONS": json.dumps({"us-central": US, **regions}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def acme(**entry) -> dict:
    return {
        "acme-private": {"url": "https://chat.acme.example", "code": "acme", "number": 2, **entry}
    }


def test_a_dedicated_region_of_number_899_starts(tmp_path):
    result = started(tmp_path, acme(number=899, code="acme2024"))
    assert result.returncode == 0, result.stderr
    assert "'number': 899" in result.stdout
    # Its block's last id is still exact in JavaScript (below 2**53).
    assert (899 + 1) * settings.REGION_ID_STRIDE - 1 < 2**53


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        ({"number": 900}, "needs a number from 0 to 899"),
        ({"code": "a"}, "needs a code: 2 to 8 lowercase letters or digits"),
        ({"code": "acmeprivate"}, "needs a code: 2 to 8 lowercase letters or digits"),
        ({"code": "Acme"}, "needs a code: 2 to 8 lowercase letters or digits"),
        ({"number": 0}, "each region needs its own number"),
        ({"code": "us"}, "each region needs its own code"),
    ],
)
def test_a_bad_region_stops_the_start_naming_what_is_wrong(tmp_path, entry, error):
    result = started(tmp_path, acme(**entry))
    assert result.returncode != 0
    assert error in result.stderr
