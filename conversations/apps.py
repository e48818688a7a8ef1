from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        # Tasks of contacts, leads and statistics live beside tasks.py.
        # The flow editor's highlight of where the test chat is (bots asks, we answer).
        from bots.hooks import sandbox_node_register
        from conversations import jobs  # noqa: F401
        from conversations.sandbox import sandbox_node

        sandbox_node_register(sandbox_node)
