from django.apps import AppConfig


class WebchatConfig(AppConfig):
    """The web chat: the widget's socket and pages (no models of its own)."""

    name = "webchat"

    def ready(self):
        # why: ready() runs once every app's models are loaded, which these modules import.
        from bots import hooks
        from webchat.sandbox import sandbox_node

        # The flow editor's highlight of where the test chat is.
        hooks.sandbox_node_register(sandbox_node)
