from django.apps import AppConfig


class MessagingConfig(AppConfig):
    """The messaging platforms: channels, their connectors, webhooks and deliveries."""

    name = "messaging"

    def ready(self):
        # What conversations asks of messaging (conversations/hooks.py).
        # why: ready() runs once every app's models are loaded, which these modules import.
        from conversations import hooks
        from messaging import delivery, tasks
        from messaging.connectors import resolve_numbered_reply

        hooks.message_send_enqueue_register(delivery.send_enqueue)
        hooks.callback_answer_register(tasks.callback_answer_later)
        hooks.numbered_reply_resolve_register(resolve_numbered_reply)
