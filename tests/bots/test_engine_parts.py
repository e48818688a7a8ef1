"""The engine's small parts: templating, text folding, number and date parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bots.engine.answers import parse_date, parse_number
from bots.engine.templates import render, render_url, render_value, template_problem
from bots.engine.text import fold, same_words

VARIABLES = {
    "name": "Ana",
    "empty": "",
    "none": None,
    "count": 3,
    "price": 9.0,
    "ratio": 0.5,
    "ok": True,
    "order": {"id": 7, "items": [{"sku": "X1"}, {"sku": "Y2"}]},
}


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("Hi {{name}}!", "Hi Ana!"),
        ("Hi {{ name }}!", "Hi Ana!"),
        ("Hi {{missing}}!", "Hi !"),
        ("Hi {{missing|there}}!", "Hi there!"),
        ("Hi {{ missing | my friend }}!", "Hi my friend!"),
        ("Hi {{empty|there}}!", "Hi there!"),
        ("Hi {{none|there}}!", "Hi there!"),
        ("Hi {{name|there}}!", "Hi Ana!"),
        ("{{count}} x {{price}} / {{ratio}} {{ok}}", "3 x 9 / 0.5 true"),
        ("SKU {{order.items.1.sku}}", "SKU Y2"),
        ("SKU {{order.items.5.sku|none}}", "SKU none"),
        ("SKU {{name.first}}", "SKU "),
        ("{{order.items.0}}", '{"sku":"X1"}'),
        ("no placeholders", "no placeholders"),
        ("{{name}}{{name}}", "AnaAna"),
    ],
)
def test_render(template, text):
    assert render(template, VARIABLES) == text


def test_render_url_percent_encodes_values_only():
    variables = {"q": "a b&c=d/é", "id": 5}
    assert (
        render_url("https://x.example/s/{{id}}?q={{q}}", variables)
        == "https://x.example/s/5?q=a%20b%26c%3Dd%2F%C3%A9"
    )


def test_render_value_keeps_the_type_of_a_lone_placeholder():
    body = {
        "count": "{{count}}",
        "order": "{{order}}",
        "text": "n={{count}}",
        "list": ["{{ok}}", 1, None],
    }
    assert render_value(body, VARIABLES) == {
        "count": 3,
        "order": VARIABLES["order"],
        "text": "n=3",
        "list": [True, 1, None],
    }
    assert render_value("{{missing}}", VARIABLES) is None
    assert render_value("{{missing|0}}", VARIABLES) == "0"


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("Hi {{name}}", True),
        ("Hi {{ name|x }}", True),
        ("{{a.b.0}}", True),
        ("Hi {{name", False),
        ("Hi name}}", False),
        ("{{1name}}", False),
        ("{{first name}}", False),
        ("{{}}", False),
    ],
)
def test_template_problem(template, ok):
    assert (template_problem(template) is None) is ok


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("¿Qué HORA es?", "que hora es"),
        ("Olá, não consigo!!", "ola nao consigo"),
        ("  Ação   já ", "acao ja"),
        ("I'm here, don\u2019t go", "im here dont go"),
        ("e-mail_address", "e mail address"),
        ("Straße", "strasse"),
        ("", ""),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


def test_same_words_ignores_case_accents_punctuation_and_spaces():
    assert same_words("E-mail me!", "Email me")
    assert same_words("ATENCIÓN al cliente", "atencion al cliente")
    assert not same_words("Email me", "Email you")


@pytest.mark.parametrize(
    ("text", "language", "number"),
    [
        ("42", "en", 42),
        ("-3", "pt", -3),
        ("+7", "en", 7),
        ("1,234.5", "en", 1234.5),
        ("1.234,5", "es", 1234.5),
        ("1 234,5", "pt", 1234.5),
        ("1,500", "en", 1500),
        ("1.500", "es", 1500),
        ("1,5", "en", 1.5),
        ("1.5", "pt", 1.5),
        ("3.0", "en", 3),
        ("1,2,3", "en", None),
        ("12abc", "en", None),
        ("", "en", None),
        ("9" * 25, "en", None),
    ],
)
def test_parse_number(text, language, number):
    assert parse_number(text, language) == number


NOW = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "language", "day"),
    [
        ("2025-03-04", "en", date(2025, 3, 4)),
        ("03/04/2025", "en", date(2025, 3, 4)),
        ("03/04/2025", "es", date(2025, 4, 3)),
        ("3.4.2025", "pt", date(2025, 4, 3)),
        ("today", "en", date(2025, 12, 31)),
        ("Tomorrow", "en", date(2026, 1, 1)),
        ("mañana", "es", date(2026, 1, 1)),
        ("AMANHÃ", "pt", date(2026, 1, 1)),
        ("ontem", "pt", date(2025, 12, 30)),
        ("2025-13-01", "en", None),
        ("31/02/2025", "es", None),
        ("soon", "en", None),
    ],
)
def test_parse_date(text, language, day):
    assert parse_date(text, language, NOW) == day


def test_relative_dates_need_a_time():
    assert parse_date("today", "en", None) is None
