from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        from bots.hooks import sandbox_node_register
        from conversations import jobs  # noqa: F401  (tasks of contacts, leads and statistics)
        from conversations.sandbox import sandbox_node

        # The flow editor's highlight of where the test chat is (bots asks, we answer).
        sandbox_node_register(sandbox_node)
