from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self):
        # What bots asks of conversations (bots/hooks.py), answered here.
        # why: ready() runs once every app's models are loaded, which these modules import.
        from bots import hooks
        from contacts import hooks as contacts_hooks  # why: as above
        from conversations.http_actions import http_action_awaited, http_action_resume
        from conversations.services import conversations_move_to_contact

        # The worker's answer to a flow's HTTP request node.
        hooks.http_action_register(awaited=http_action_awaited, resume=http_action_resume)
        # A merge of contacts: their conversations follow (contacts/hooks.py).
        contacts_hooks.contact_merging_register(conversations_move_to_contact)
