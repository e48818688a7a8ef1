from django.apps import AppConfig


class StatsConfig(AppConfig):
    """The statistics: each bot's daily figures, the dashboard's charts and the API's report."""

    name = "stats"
    # The dashboard names its page Statistics; so do its address's app page and crumbs.
    verbose_name = "Statistics"

    def ready(self):
        # What conversations asks of the statistics (conversations/hooks.py).
        # why: ready() runs once every app's models are loaded, which these modules import.
        from conversations import hooks
        from stats import services

        hooks.conversation_rated_register(services.conversation_rated)
