from django.apps import AppConfig, apps
from django.core.checks import register as check_register
from django.db.models.signals import post_migrate
from django.urls import register_converter

from chattonic.core.hooks import hooks_answered_check
from chattonic.core.inputs import KeyConverter
from chattonic.core.redact import install_log_redaction


def _install_schedule(sender, using="default", **kwargs):
    from chattonic.core.services import schedule_install

    schedule_install()


class CoreConfig(AppConfig):
    name = "chattonic.core"
    label = "core"
    verbose_name = "Platform"

    def ready(self):
        install_log_redaction()  # no secret in any log line of this process (docs/security.md)
        # ``<key:name>``: database ids in URLs (ASCII digits, always within the keys' range).
        register_converter(KeyConverter, "key")
        # A hook that a lower app declares and no higher app answers fails ``check``.
        check_register(hooks_answered_check)
        # Like Django's own permissions and content types, beat's rows follow migrate:
        # once beat's tables exist, the declared schedule is installed.
        post_migrate.connect(
            _install_schedule,
            sender=apps.get_app_config("django_celery_beat"),
            dispatch_uid="chattonic.schedule_install",
        )
