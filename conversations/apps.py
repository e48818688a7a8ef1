from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        # Tasks of contacts, leads and statistics live beside tasks.py.
        from conversations import jobs  # noqa: F401
