from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "chattonic.tenancy"
    label = "tenancy"
    verbose_name = "Company and team"

    def ready(self):
        from chattonic.tenancy import checks  # noqa: F401 - registers the deployment checks
