"""The kinds of channel: the web chat, each messaging platform and the API channel (a word of
every app: contacts' identities, conversations, channels, leads, statistics)."""

from django.db import models


class ChannelKind(models.TextChoices):
    WEBCHAT = "webchat", "Web chat"
    WHATSAPP = "whatsapp", "WhatsApp Cloud API"
    MESSENGER = "messenger", "Messenger"
    TELEGRAM = "telegram", "Telegram"
    TWILIO = "twilio", "Twilio (SMS / WhatsApp)"
    API = "api", "API"
