"""A smoke run of bench/pages.py on a few conversations: every dashboard page it times answers
200 (it stops otherwise), each printed beside the bare admin index with their ratio, and the
last line says whether the goal is met. (No timing is asserted: the bench prints the figures.)"""

from __future__ import annotations

import re
import subprocess

import pytest
from django.contrib import admin

from chattonic.tenancy.admin import TenantAwareAdmin
from chattonic.tenancy.models import Tenant
from tests.processes import ROOT, printed_ratio_holds, python
from tests.processes import test_database_env as database_env

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]


def test_the_pages_bench_times_every_page_beside_the_bare_index():
    result = subprocess.run(
        python("bench/pages.py", "--conversations", "30", "--loads", "2"),
        cwd=ROOT,
        env=database_env(),
        capture_output=True,
        text=True,
        timeout=600,  # a safety net for a hung process, not a timing assertion
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    baseline = re.search(r"^bare Django admin index \(baseline\)\s+([\d.]+)\s+1\.00$", output, re.M)
    assert baseline, output
    rows = re.findall(r"^(.+?)\s+([\d.]+)\s+([\d.]+)(?:  <- over the goal)?$", output, re.M)
    timed = {label.strip(): (ms, ratio) for label, ms, ratio in rows}
    bare = baseline.group(1)
    for label, (ms, ratio) in timed.items():
        assert printed_ratio_holds(ratio, ms, bare), (label, ms, ratio, bare)
    # Every model an owner has, from the admin's registry: its list at least.
    owned = [
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantAwareAdmin)
    ]
    for model in owned:
        assert f"{model._meta.verbose_name_plural}: list" in timed, model
    assert "home" in timed and "statistics" in timed
    assert "goal: every page <= 3x the bare index and <= 150 ms" in output
    assert result.stdout.strip().splitlines()[-1] in ("goal met", "goal not met")
    # The bench leaves nothing behind.
    assert not Tenant.objects.filter(slug__startswith="pages-").exists()
