from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        # What bots asks of conversations (bots/hooks.py), answered here.
        # why: ready() runs once every app's models are loaded, which these modules import.
        from bots import hooks
        from conversations import jobs  # noqa: F401  (tasks of contacts, leads and statistics)
        from conversations.http_actions import http_action_awaited, http_action_resume
        from conversations.sandbox import sandbox_node

        # The flow editor's highlight of where the test chat is.
        hooks.sandbox_node_register(sandbox_node)
        # The worker's answer to a flow's HTTP request node.
        hooks.http_action_register(awaited=http_action_awaited, resume=http_action_resume)
