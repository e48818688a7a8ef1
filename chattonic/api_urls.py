"""The REST API v1: every app adds its routes here."""

from django.urls import include, path

from agents.api import ConversationViewSet
from bots.api import BotTemplateViewSet, BotVersionViewSet, BotViewSet
from chattonic.core.api import Router
from chattonic.tenancy.api import TenantView
from contacts.api import ContactViewSet
from leads.api import LeadExportView, LeadViewSet
from stats.api import StatsView
from support.api import TicketViewSet

app_name = "api"

router = Router()
router.register("bots", BotViewSet, basename="bot")
router.register("bot-templates", BotTemplateViewSet, basename="bot-template")
router.register("tickets", TicketViewSet, basename="ticket")
# The conversations app's reads with the agents' actions (send, hand off, resolve).
router.register("conversations", ConversationViewSet, basename="conversation")
router.register("contacts", ContactViewSet, basename="contact")
router.register("leads", LeadViewSet, basename="lead")

versions = Router()
versions.register("versions", BotVersionViewSet, basename="bot-version")

urlpatterns = [
    path("tenant/", TenantView.as_view(), name="tenant"),
    # Before the router, whose leads/<pk>/ would take "export" for an id.
    path("leads/export/", LeadExportView.as_view(), name="lead-export"),
    path("stats/", StatsView.as_view(), name="stats"),
    path("", include(router.urls)),
    path("bots/<key:bot_pk>/", include(versions.urls)),
]
