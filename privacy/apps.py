from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """A contact's data exported or erased, everywhere it is held, with an audit."""

    name = "privacy"
