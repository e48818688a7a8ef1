from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "backups"

    def ready(self):
        from backups import checks  # noqa: F401 - registers the system checks
