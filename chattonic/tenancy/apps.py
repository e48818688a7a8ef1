from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "chattonic.tenancy"
    label = "tenancy"
    verbose_name = "Tenant"
