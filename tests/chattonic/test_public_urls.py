"""``chattonic.core.public_urls``: the configured public URL wins; without one, a page names the
host it was asked on (one that ALLOWED_HOSTS accepts), and what has no request the guess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.test import RequestFactory

from chattonic.core.public_urls import absolute_url, public_base_url

GUESS = "http://localhost:8000"


@pytest.fixture
def unconfigured(settings):
    settings.PUBLIC_BASE_URL = settings.PUBLIC_BASE_URL_GUESS = GUESS
    return settings


def test_without_a_configured_url_a_page_names_the_host_it_was_asked_on(unconfigured):
    request = RequestFactory().get("/", HTTP_HOST="127.0.0.1:9123")
    assert public_base_url(request) == "http://127.0.0.1:9123"
    secure = RequestFactory().get("/", HTTP_HOST="localhost:8443", secure=True)
    assert absolute_url("/static/x.js", secure) == "https://localhost:8443/static/x.js"
    assert public_base_url() == GUESS  # a task, an email: no request to ask


def test_a_host_that_allowed_hosts_refuses_is_never_named(unconfigured):
    request = RequestFactory().get("/", HTTP_HOST="evil.example")
    with pytest.raises(DisallowedHost):
        public_base_url(request)


def test_a_configured_url_wins_over_the_request(unconfigured):
    unconfigured.PUBLIC_BASE_URL = "https://chat.example.com/"
    request = RequestFactory().get("/", HTTP_HOST="127.0.0.1:9123")
    assert public_base_url(request) == "https://chat.example.com"
    assert absolute_url("/hooks/x/", request) == "https://chat.example.com/hooks/x/"
    assert public_base_url() == "https://chat.example.com"
    with pytest.raises(ValueError):
        absolute_url("hooks/x/")


def settings_of(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "from django.conf import settings; "
        "print(repr((settings.PUBLIC_BASE_URL, settings.PUBLIC_BASE_URL_GUESS)))"
    )
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR,
        env={"PATH": os.environ["PATH"], "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env,expected",
    [
        ({}, (GUESS, GUESS)),
        ({"PUBLIC_BASE_URL": "https://chat.example.com"}, ("https://chat.example.com", "")),
        (
            {
                "CHATTONIC_REGION": "eu-frankfurt",
                "CHATTONIC_REGIONS": '{"us-central": "https://us.example.com", '
                '"eu-frankfurt": "https://eu.example.com"}',
            },
            ("https://eu.example.com", ""),
        ),
    ],
)
def test_the_setting_says_whether_the_environment_names_the_url(tmp_path, env, expected):
    result = settings_of({"CHATTONIC_VAR_DIR": str(tmp_path), **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(expected)


def test_a_public_url_without_its_scheme_is_a_clear_startup_error(tmp_path):
    result = settings_of({"CHATTONIC_VAR_DIR": str(tmp_path), "PUBLIC_BASE_URL": "chat.example"})
    assert result.returncode != 0
    assert "PUBLIC_BASE_URL must be an http(s) URL" in result.stderr
