"""The REST API v1: every app adds its routes here."""

from django.urls import path

from chattonic.tenancy.api import TenantView

app_name = "api"

urlpatterns = [
    path("tenant/", TenantView.as_view(), name="tenant"),
]
