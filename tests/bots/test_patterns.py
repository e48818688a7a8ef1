"""Tenants' regular expressions (issue 15, finding 7): RE2, linear in the text, refused at the
doors when RE2 cannot run them, and never a stall of the engine whatever the visitor types."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from bots.engine import Context, Event, step, validate_definition
from bots.engine.patterns import (
    MAX_PATTERN_LENGTH,
    MAX_TEXT_LENGTH,
    compile_pattern,
    full_match,
    pattern_problem,
)
from bots.models import Bot, BotVersion
from tests.bots.flows import SIMPLE_FLOW
from tests.factories import BotFactory, BotVersionFactory, MembershipFactory

ROOT = Path(__file__).resolve().parents[2]

# The finding's three (they got past the old heuristic) and the classic ReDoS patterns. Each
# takes exponential (or, for (.*a){20}, n^20) time in a backtracking engine.
CATASTROPHIC = ["((a+))+$", "(a|a?)+$", "(a|a)*$", "(a+)+$", "(.*a){20}"]
HUNDRED_KB = 100_000


def fastest(call, repeat: int = 3) -> float:
    """The best of a few timings of call(), in seconds (the machine is shared and noisy)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def regex_flow(pattern: str, **question) -> dict:
    return {
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "question",
                "text": "Your code?",
                "variable": "code",
                "validation": "regex",
                "pattern": pattern,
                "retry_text": "Not a code.",
                "max_retries": 10,
                "next": "done",
                **question,
            },
            "done": {"type": "end", "text": "Got {{code}}."},
        },
    }


def errors_at(definition: dict) -> dict[tuple, str]:
    return {(e.node, e.field): e.message for e in validate_definition(definition)}


# --- Linear time ------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_is_accepted_and_runs_in_linear_time(pattern):
    assert validate_definition(regex_flow(pattern)) == []
    compiled = compile_pattern(pattern)
    for text in ("a" * HUNDRED_KB, "a" * HUNDRED_KB + "!", "ab" * (HUNDRED_KB // 2)):
        assert fastest(lambda text=text: compiled.fullmatch(text)) < 0.05, (pattern, text[:5])
    assert compiled.fullmatch("a" * HUNDRED_KB) is not None  # and it still answers right
    assert compiled.fullmatch("a" * HUNDRED_KB + "!") is None


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_step_answering_such_a_question_is_quick_whatever_the_answer(pattern):
    """The finding's stall: a 22-character answer held the thread for 2 s. Every answer up to
    the longest a pattern sees is now a matter of microseconds, and still checked right."""
    definition = regex_flow(pattern)
    asked = step(definition, None, Event("start"), Context()).state
    for answer in ("a" * 21 + "!", "a" * (MAX_TEXT_LENGTH - 1) + "!"):
        event = Event("message", text=answer)
        took = fastest(lambda event=event: step(definition, asked, event, Context()))
        assert took < 0.05, (pattern, len(answer))
        result = step(definition, asked, event, Context())
        assert result.error is None and [r["text"] for r in result.replies] == ["Not a code."]
    accepted = step(definition, asked, Event("message", text="a" * 20), Context())
    assert [r["text"] for r in accepted.replies] == [f"Got {'a' * 20}."]


# --- What RE2 cannot run is refused, naming the node and the field ----------------------------


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(\w)\1", "uses a backreference (\\1), which RE2 syntax does not have"),
        (
            r"(?=.*\d)\w+",
            "uses lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which RE2 syntax does not "
            "have; match the text itself instead",
        ),
        (
            r"(?<!x)\d+",
            "uses lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which RE2 syntax does not "
            "have; match the text itself instead",
        ),
        (r"(?>a+)b", "is not a valid regular expression in RE2 syntax: invalid perl operator: (?>"),
        (r"a++", "is not a valid regular expression in RE2 syntax: bad repetition operator: ++"),
        (
            r"\d+\Z",
            "uses \\Z, which RE2 syntax writes \\z (or leave it out: the whole text must match)",
        ),
        (r"a{1001}", "repeats more than 1000 times in all (at {1001}), the most RE2 allows"),
        (
            r"[\p{L}\d ]{1,100}",
            "is too large once compiled: use smaller repetition counts, or + and *",
        ),
        ("(a", "is not a valid regular expression in RE2 syntax: missing ): (a"),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_naming_node_and_field(pattern, message):
    assert errors_at(regex_flow(pattern)) == {("ask", "pattern"): message}
    assert pattern_problem(pattern) == message


def test_a_pattern_over_the_length_cap_is_refused_and_never_compiled():
    pattern = "a" * (MAX_PATTERN_LENGTH + 1)
    assert errors_at(regex_flow(pattern)) == {
        ("ask", "pattern"): f"must be at most {MAX_PATTERN_LENGTH} characters long"
    }
    assert pattern_problem(pattern) == f"must be at most {MAX_PATTERN_LENGTH} characters long"
    assert errors_at(regex_flow("a" * MAX_PATTERN_LENGTH)) == {}


def test_an_answer_over_the_text_cap_never_matches():
    assert full_match(r"\d+", "1" * MAX_TEXT_LENGTH)
    assert not full_match(r"\d+", "1" * (MAX_TEXT_LENGTH + 1))


def test_the_dialect_is_re2s():
    """What a flow's author meets (docs/flows.md): whole-text match, ignore_case with Unicode
    case folding, ASCII \\d, Unicode classes, named groups."""
    assert full_match(r"[A-Z]{3}-\d{4}", "ABC-1234")
    assert not full_match(r"[A-Z]{3}-\d{4}", "ABC-12345")
    assert not full_match(r"[A-Z]{3}-\d{4}", "abc-1234")
    assert full_match(r"[A-Z]{3}-\d{4}", "abc-1234", ignore_case=True)
    assert full_match("ñandú", "ÑANDÚ", ignore_case=True)
    assert not full_match(r"\d+", "١٢٣")  # Arabic-Indic digits: \d is ASCII in RE2
    assert full_match(r"\p{N}+", "١٢٣")
    assert full_match(r"(?P<first>\p{L}+) (?P<last>\p{L}+)", "José Núñez")


def test_ignore_case_is_validated_as_it_runs():
    flow = regex_flow(r"[a-z]{2}\d+", ignore_case=True)
    assert validate_definition(flow) == []
    asked = step(flow, None, Event("start"), Context()).state
    result = step(flow, asked, Event("message", text="AB12"), Context())
    assert [r["text"] for r in result.replies] == ["Got AB12."]


def test_a_version_published_with_a_pattern_re2_cannot_run_is_an_engine_error_not_a_crash():
    """Versions published before RE2 may hold such a pattern: the step fails with the node
    named and the state untouched, and the platform hands off (as on any engine error)."""
    definition = regex_flow(r"(\d)\1")
    assert errors_at(definition) != {}
    asked = step(definition, None, Event("start"), Context()).state
    result = step(definition, asked, Event("message", text="11"), Context())
    assert result.error == {
        "code": "invalid_pattern",
        "message": "pattern uses a backreference (\\1), which RE2 syntax does not have",
        "node": "ask",
    }
    assert result.state == asked and result.replies == [] and result.actions == []


def test_every_flow_the_project_ships_still_validates():
    shipped = [
        json.loads((ROOT / "chattonic" / "demo_flow.json").read_text()),
        json.loads((ROOT / "tests" / "bots" / "data" / "flow_every_node.json").read_text()),
        SIMPLE_FLOW,
    ]
    for definition in shipped:
        assert validate_definition(definition) == []


# --- The doors: 400 naming the field, nothing written -----------------------------------------


def lookbehind_flow() -> dict:
    definition = copy.deepcopy(SIMPLE_FLOW)
    definition["nodes"]["ask_email"].update(validation="regex", pattern=r"(?<=@)\w+")
    return definition


FIELD = "definition.nodes.ask_email.pattern"


@pytest.mark.django_db
def test_the_api_refuses_a_pattern_re2_cannot_run_with_400_naming_the_field(api, tenant):
    bot = BotFactory(tenant=tenant)
    before = Bot.objects.filter(pk=bot.pk).values().get()
    response = api.patch(
        f"/api/v1/bots/{bot.pk}/", {"definition": lookbehind_flow()}, format="json"
    )
    assert response.status_code == 400
    assert "lookbehind" in response.json()["error"]["fields"][FIELD][0]
    assert Bot.objects.filter(pk=bot.pk).values().get() == before

    created = api.post(
        "/api/v1/bots/", {"name": "X", "definition": lookbehind_flow()}, format="json"
    )
    assert created.status_code == 400 and FIELD in created.json()["error"]["fields"]
    assert Bot.objects.filter(tenant=tenant).count() == 1


@pytest.mark.django_db
def test_publishing_or_rolling_back_to_a_pattern_re2_cannot_run_is_400_and_publishes_nothing(
    api, tenant
):
    """A draft or a version saved before RE2 (written here straight to the database, as an
    older release would have) cannot go live again."""
    bot = BotFactory(tenant=tenant)
    Bot.objects.filter(pk=bot.pk).update(draft_definition=lookbehind_flow())
    response = api.post(f"/api/v1/bots/{bot.pk}/publish/", format="json")
    assert response.status_code == 400 and FIELD in response.json()["error"]["fields"]
    assert not BotVersion.objects.filter(bot=bot).exists()

    old = BotVersionFactory(tenant=tenant, bot=bot, number=1, definition=lookbehind_flow())
    response = api.post(f"/api/v1/bots/{bot.pk}/rollback/", {"version": 1}, format="json")
    assert response.status_code == 400, response.content
    assert FIELD in response.json()["error"]["fields"]
    assert list(BotVersion.objects.filter(bot=bot)) == [old]
    bot.refresh_from_db()
    assert bot.published_version is None and bot.draft_definition == lookbehind_flow()


@pytest.mark.django_db
def test_the_dashboards_editor_shows_the_pattern_error_inline_and_saves_nothing(client, tenant):
    client.force_login(MembershipFactory(tenant=tenant, role="admin").user)
    bot = BotFactory(tenant=tenant)
    response = client.post(
        f"/dashboard/bots/bot/{bot.pk}/flow/", {"definition": json.dumps(lookbehind_flow())}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert FIELD in body and "lookahead or lookbehind" in body
    bot.refresh_from_db()
    assert bot.draft_definition == SIMPLE_FLOW
