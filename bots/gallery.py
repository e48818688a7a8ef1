"""The flow templates a new bot may start from ("Add bot" shows them as a gallery; the API
lists them at ``/api/v1/bot-templates/``), in English, Spanish and Portuguese. Each is a
definition in ``bots/flow_templates/``, valid as it is, plus the bot settings it needs (its
language; after-hours support opens tickets)."""

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
    language: str = "en"
    bot_fields: dict[str, Any] = field(default_factory=dict)
    file: str = ""

    @property
    def definition(self) -> dict:
        """A fresh copy of the template's flow (callers may change it)."""
        if not self.file:
            return starter_definition()
        return copy.deepcopy(_load(self.file))


@cache
def _load(file: str) -> dict:
    return json.loads((TEMPLATES_DIR / file).read_text(encoding="utf-8"))


LANGUAGES = {"en": "English", "es": "Español", "pt": "Português"}
# The bot's own texts in a template's language (English: the model's defaults). A Spanish
# template's bot greeted its visitors "Hi! How can I help you today?" and told them in English
# that nobody was there.
BOT_TEXTS = {
    "es": {
        "welcome_text": "¡Hola! ¿En qué puedo ayudarte hoy?",
        "fallback_text": "Lo siento, no lo he entendido. ¿Puedes decirlo de otra forma?",
        "away_message": (
            "Nuestro equipo no está disponible ahora. Déjanos tus datos y te responderemos."
        ),
    },
    "pt": {
        "welcome_text": "Olá! Como posso ajudar você hoje?",
        "fallback_text": "Desculpe, não entendi. Pode dizer de outra forma?",
        "away_message": (
            "Nossa equipe não está disponível agora. Deixe seus dados e entraremos em contato."
        ),
    },
}
# (name, {language: (title, summary)}, bot fields) of each template; its flow in each language
# is flow_templates/<name>.json (English) or <name>.<language>.json, the same steps and ids.
_TEMPLATES = [
    (
        "lead_capture",
        {
            "en": ("Lead capture", "Asks the visitor's name, email and need, and records a lead."),
            "es": (
                "Captura de contactos",
                "Pregunta el nombre, el correo y la necesidad del visitante, y registra un "
                "contacto.",
            ),
            "pt": (
                "Captação de leads",
                "Pergunta o nome, o e-mail e a necessidade do visitante, e registra um lead.",
            ),
        },
        {},
    ),
    (
        "faq_handoff",
        {
            "en": (
                "FAQ with handoff",
                "Answers common questions; hands the chat to a person on request.",
            ),
            "es": (
                "Preguntas frecuentes con traspaso",
                "Responde las preguntas habituales; pasa el chat a una persona si se pide.",
            ),
            "pt": (
                "Perguntas frequentes com transferência",
                "Responde às perguntas comuns; passa a conversa a uma pessoa quando pedido.",
            ),
        },
        {},
    ),
    (
        "order_status",
        {
            "en": (
                "Order status",
                "Asks the order number and looks it up with an HTTP request to your shop.",
            ),
            "es": (
                "Estado del pedido",
                "Pregunta el número de pedido y lo consulta con una petición HTTP a tu tienda.",
            ),
            "pt": (
                "Status do pedido",
                "Pergunta o número do pedido e o consulta com uma requisição HTTP à sua loja.",
            ),
        },
        {},
    ),
    (
        "appointment",
        {
            "en": (
                "Appointment request",
                "Asks a date (today or later), name and email, and records the request.",
            ),
            "es": (
                "Solicitud de cita",
                "Pregunta una fecha (de hoy en adelante), el nombre y el correo, y registra la "
                "solicitud.",
            ),
            "pt": (
                "Pedido de agendamento",
                "Pergunta uma data (de hoje em diante), o nome e o e-mail, e registra o pedido.",
            ),
        },
        {},
    ),
    (
        "after_hours",
        {
            "en": (
                "After-hours support",
                "A person in business hours; outside them, a ticket with the visitor's details.",
            ),
            "es": (
                "Soporte fuera de horario",
                "Una persona en horario de atención; fuera de él, un ticket con los datos del "
                "visitante.",
            ),
            "pt": (
                "Suporte fora do horário",
                "Uma pessoa no horário de atendimento; fora dele, um chamado com os dados do "
                "visitante.",
            ),
        },
        {"ticket_after_hours": True},
    ),
]


def _all() -> dict[str, FlowTemplate]:
    found = {
        BLANK: FlowTemplate(
            BLANK, "Blank bot", "Asks what the visitor needs, and ends: build from there."
        )
    }
    for language in LANGUAGES:
        for name, texts, fields in _TEMPLATES:
            title, summary = texts[language]
            key = name if language == "en" else f"{name}_{language}"
            file = f"{name}.json" if language == "en" else f"{name}.{language}.json"
            bot_fields = (
                dict(fields)
                if language == "en"
                else {**fields, "default_language": language, **BOT_TEXTS[language]}
            )
            found[key] = FlowTemplate(key, title, summary, language, bot_fields, file)
    return found


FLOW_TEMPLATES: dict[str, FlowTemplate] = _all()


def flow_template(name: str) -> FlowTemplate | None:
    return FLOW_TEMPLATES.get(name)
