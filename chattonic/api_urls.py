"""The REST API v1: every app adds its routes here."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from bots.api import BotVersionViewSet, BotViewSet
from chattonic.tenancy.api import TenantView
from support.api import TicketViewSet

app_name = "api"

router = SimpleRouter()
router.register("bots", BotViewSet, basename="bot")
router.register("tickets", TicketViewSet, basename="ticket")

versions = SimpleRouter()
versions.register("versions", BotVersionViewSet, basename="bot-version")

urlpatterns = [
    path("tenant/", TenantView.as_view(), name="tenant"),
    path("", include(router.urls)),
    path("bots/<int:bot_pk>/", include(versions.urls)),
]
