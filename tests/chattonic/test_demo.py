"""The demo that ``make run`` loads: a launched bot whose flow shows every node type."""

import pytest

from bots.engine import validate_definition
from bots.models import Bot, BotVersion
from chattonic.demo import demo_flow, demo_load, demo_urls
from chattonic.tenancy.models import Membership

pytestmark = pytest.mark.django_db


def test_the_demo_bot_uses_every_node_type_and_is_valid():
    flow = demo_flow("http://example.test:9000")
    kinds = {node["type"] for node in flow["nodes"].values()}
    assert kinds == {
        "message", "question", "condition", "set", "router", "http", "capture_lead",
        "handoff", "end",
    }  # fmt: skip
    assert validate_definition(flow) == []
    assert flow["nodes"]["lookup"]["url"].startswith("http://example.test:9000/demo/api/")


def test_the_demo_says_the_hours_it_keeps():
    """The demo bot is open all week, around the clock (so a visitor can reach the demo
    agent at any hour): its hours answer and the agent's canned answer say so."""
    from chattonic.demo import ALL_WEEK, DEMO_CANNED

    bot = demo_load("http://127.0.0.1:8000").bot
    assert bot.business_hours == ALL_WEEK
    assert "every day, around the clock" in demo_flow("http://x")["nodes"]["hours"]["text"]
    assert "every day, around the clock" in DEMO_CANNED["hours"]


def test_demo_load_is_idempotent_and_launches_the_bot():
    first = demo_load("http://127.0.0.1:8000")
    second = demo_load("http://127.0.0.1:8000")
    assert first.bot.pk == second.bot.pk
    assert Bot.objects.get(pk=first.bot.pk).status == Bot.Status.LAUNCHED
    assert BotVersion.objects.filter(bot=first.bot).count() == 1
    roles = dict(Membership.objects.for_tenant(first.tenant).values_list("user__username", "role"))
    assert roles == {"owner@demo.example": "owner", "agent@demo.example": "agent"}


def test_a_new_address_republishes_the_lookup_url():
    demo_load("http://127.0.0.1:8000")
    demo = demo_load("http://127.0.0.1:8123")
    live = Bot.objects.get(pk=demo.bot.pk).published_version.definition
    assert live["nodes"]["lookup"]["url"].startswith("http://127.0.0.1:8123/")


def test_the_banner_lists_the_widget_demo_page_and_the_console():
    demo = demo_load()
    urls = dict(demo_urls("http://localhost:8000/", demo))
    assert urls["Widget demo page"] == f"http://localhost:8000/demo/{demo.bot.public_key}/"
    assert urls["Agent console"] == "http://localhost:8000/console/"


def test_loading_the_demo_again_signs_nobody_out(client):
    """``make run`` loads the demo at every start: a signed-in demo owner stays signed in (a
    session is bound to its user's password hash, which a fresh ``set_password`` would
    change)."""
    demo_load("http://127.0.0.1:8000")
    hashes = dict(Membership.objects.values_list("user__username", "user__password"))
    signed_in = client.post(
        "/dashboard/login/",
        {"username": "owner@demo.example", "password": "chattonic-demo", "next": "/dashboard/"},
    )
    assert signed_in.status_code == 302
    assert client.get("/dashboard/").status_code == 200
    demo_load("http://127.0.0.1:8000")
    assert client.get("/dashboard/").status_code == 200
    assert dict(Membership.objects.values_list("user__username", "user__password")) == hashes


def test_the_demo_agent_has_canned_responses_and_keeps_the_name_they_chose():
    from agents.models import CannedResponse
    from agents.services import agent_name_set, agent_profile

    demo = demo_load("http://127.0.0.1:8000")
    agent = Membership.objects.for_tenant(demo.tenant).get(role="agent").user
    assert agent.first_name == "Sam"
    shortcuts = CannedResponse.objects.for_tenant(demo.tenant).values_list("shortcut", flat=True)
    assert set(shortcuts) == {"hours", "shipping", "thanks"}
    agent_name_set(profile=agent_profile(tenant_id=demo.tenant.pk, user=agent), first_name="Sasha")
    demo_load("http://127.0.0.1:8000")
    agent.refresh_from_db()
    assert agent.first_name == "Sasha"
    assert CannedResponse.objects.for_tenant(demo.tenant).count() == 3


@pytest.mark.processes
@pytest.mark.embedded_only
def test_manage_py_demo_load_needs_no_broker_and_leaves_a_live_bot(tmp_path):
    """The demo loads before any worker runs (``manage.py demo_load``, and ``runplatform``
    before it starts its processes): the demo trains its bot itself, and nothing is queued
    for a worker that is not there."""
    import os
    import subprocess

    from tests.processes import ROOT, python

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", CHATTONIC_VAR_DIR=str(tmp_path))  # no embedded Redis runs there
    for command in (("migrate", "--noinput"), ("demo_load",)):
        done = subprocess.run(
            python("manage.py", *command), cwd=ROOT, env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:]
    check = subprocess.run(
        python(
            "manage.py",
            "shell",
            "-c",
            "from bots.models import Bot; b = Bot.objects.get(); "
            "print(b.status, b.published_version.number, b.published_version.training)",
        ),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.stdout.split()[-3:] == ["launched", "1", "ready"], check.stderr
