"""The engine's own words, used where a definition leaves a text out."""

from __future__ import annotations

_TEXTS: dict[str, dict[str, str]] = {
    "fallback": {
        "en": "Sorry, I didn't understand that.",
        "es": "Lo siento, no lo he entendido.",
        "pt": "Desculpe, não entendi.",
    },
    "handoff": {
        "en": "I'm connecting you with a person from our team.",
        "es": "Te pongo en contacto con una persona de nuestro equipo.",
        "pt": "Vou te passar para uma pessoa da nossa equipe.",
    },
    "retry.text": {
        "en": "Please type an answer.",
        "es": "Por favor, escribe una respuesta.",
        "pt": "Por favor, digite uma resposta.",
    },
    # A text answer of the wrong length: it says which way ("Por favor, escribe una
    # respuesta." to an answer of two letters told the visitor nothing).
    "retry.too_short": {
        "en": "Please write a little more: at least {n} characters.",
        "es": "Por favor, escribe un poco más: al menos {n} caracteres.",
        "pt": "Por favor, escreva um pouco mais: pelo menos {n} caracteres.",
    },
    "retry.too_long": {
        "en": "Please make it shorter: at most {n} characters.",
        "es": "Por favor, escríbelo más corto: como máximo {n} caracteres.",
        "pt": "Por favor, escreva algo mais curto: no máximo {n} caracteres.",
    },
    "retry.email": {
        "en": "That doesn't look like an email address. Please try again.",
        "es": "Eso no parece un correo electrónico. Inténtalo de nuevo.",
        "pt": "Isso não parece um endereço de e-mail. Tente novamente.",
    },
    "retry.phone": {
        "en": "That doesn't look like a phone number. Please try again.",
        "es": "Eso no parece un número de teléfono. Inténtalo de nuevo.",
        "pt": "Isso não parece um número de telefone. Tente novamente.",
    },
    "retry.number": {
        "en": "Please answer with a number.",
        "es": "Por favor, responde con un número.",
        "pt": "Por favor, responda com um número.",
    },
    "retry.date": {
        "en": "Please give a date, like 2025-03-14.",
        "es": "Por favor, indica una fecha, por ejemplo 14/03/2025.",
        "pt": "Por favor, informe uma data, por exemplo 14/03/2025.",
    },
    "retry.choice": {
        "en": "Please choose one of the options.",
        "es": "Por favor, elige una de las opciones.",
        "pt": "Por favor, escolha uma das opções.",
    },
    "retry.regex": {
        "en": "That answer is not in the expected format. Please try again.",
        "es": "Esa respuesta no tiene el formato esperado. Inténtalo de nuevo.",
        "pt": "Essa resposta não está no formato esperado. Tente novamente.",
    },
}


def default_text(key: str, language: str) -> str:
    """The engine's text for key in language (English when the language is unknown)."""
    texts = _TEXTS[key]
    return texts.get(language, texts["en"])
