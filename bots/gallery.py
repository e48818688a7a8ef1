"""The flow templates a new bot may start from ("Add bot" shows them as a gallery; the API
lists them at ``/api/v1/bot-templates/``). Each is a definition in ``bots/flow_templates/``,
valid as it is, plus the bot settings it needs (after-hours support opens tickets)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bots.models import starter_definition

TEMPLATES_DIR = Path(__file__).with_name("flow_templates")
BLANK = "blank"


@dataclass(frozen=True)
class FlowTemplate:
    name: str
    title: str
    summary: str
    bot_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def definition(self) -> dict:
        """A fresh copy of the template's flow (callers may change it)."""
        if self.name == BLANK:
            return starter_definition()
        return copy.deepcopy(_load(self.name))


@cache
def _load(name: str) -> dict:
    return json.loads((TEMPLATES_DIR / f"{name}.json").read_text(encoding="utf-8"))


FLOW_TEMPLATES: dict[str, FlowTemplate] = {
    t.name: t
    for t in (
        FlowTemplate(
            BLANK, "Blank bot", "Asks what the visitor needs, and ends: build from there."
        ),
        FlowTemplate(
            "lead_capture",
            "Lead capture",
            "Asks the visitor's name, email and need, and records a lead.",
        ),
        FlowTemplate(
            "faq_handoff",
            "FAQ with handoff",
            "Answers common questions; hands the chat to a person on request.",
        ),
        FlowTemplate(
            "order_status",
            "Order status",
            "Asks the order number and looks it up with an HTTP request to your shop.",
        ),
        FlowTemplate(
            "appointment",
            "Appointment request",
            "Asks a date (today or later), name and email, and records the request.",
        ),
        FlowTemplate(
            "after_hours",
            "After-hours support",
            "A person in business hours; outside them, a ticket with the visitor's details.",
            bot_fields={"ticket_after_hours": True},
        ),
    )
}


def flow_template(name: str) -> FlowTemplate | None:
    return FLOW_TEMPLATES.get(name)
