from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path, re_path, reverse
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agents import views as console_views
from bots import regions as bot_regions
from chattonic.core import health
from chattonic.dashboard import navigation_titles_apply
from chattonic.regions import views as region_views
from chattonic.tenancy import views as tenancy_views
from messaging import webhooks as channel_webhooks
from support import views as support_views
from webchat import views as webchat_views

# Every model's admin is registered by now (the apps' admin modules ran at start-up).
navigation_titles_apply(admin.site)


class FaviconView(RedirectView):
    """Browsers ask every site for /favicon.ico: the platform's icon, not a 404 in the console of
    every page (the dashboard, the console, the demo page)."""

    permanent = True

    def get_redirect_url(self, *args, **kwargs) -> str:
        return static("chattonic/favicon.svg")


# The dashboard's pages of the models that moved out of `conversations` (docs/architecture.md),
# by their former URL: a bookmark or a link in an old e-mail finds the same page at its new
# one. Model name in the old URL -> its app now.
MOVED_FROM_CONVERSATIONS = {
    "contact": "contacts",
    "lead": "leads",
    "leadwebhook": "leads",
    "privacyaudit": "privacy",
    "channel": "messaging",
    "deliveryattempt": "messaging",
}


class MovedDashboardPageView(RedirectView):
    """A moved model's page at its former address (the list, an object's page, add,
    history...): to the same page at its new one, the query (a list's filters) kept. The
    statistics were a page of the conversations' list; now they are the daily statistics'
    list."""

    permanent = True

    def get_redirect_url(self, *args, model: str = "", rest: str = "", **kwargs) -> str:
        if model:
            url = reverse(f"admin:{MOVED_FROM_CONVERSATIONS[model]}_{model}_changelist") + rest
        else:
            url = reverse("admin:stats_dailystat_changelist")
        query = self.request.META.get("QUERY_STRING", "")
        return f"{url}?{query}" if query else url

    def post(self, request, *args, **kwargs):
        # A form sent from a page opened before the move (an action on a list): 308, so the
        # browser sends it again, as a POST, to the new address (a 301 would turn it into a
        # GET and lose it without a word).
        response = HttpResponsePermanentRedirect(self.get_redirect_url(*args, **kwargs))
        response.status_code = 308
        return response


urlpatterns = [
    path("", RedirectView.as_view(url="/dashboard/", permanent=False)),
    re_path(
        rf"^dashboard/conversations/(?P<model>{'|'.join(MOVED_FROM_CONVERSATIONS)})/(?P<rest>.*)$",
        MovedDashboardPageView.as_view(),
        name="dashboard-moved",
    ),
    path(
        "dashboard/conversations/conversation/stats/",
        MovedDashboardPageView.as_view(),
        name="dashboard-moved-stats",
    ),
    path("favicon.ico", FaviconView.as_view(), name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("dashboard/", admin.site.urls),
    path(
        "accounts/invitation/<str:token>/",
        tenancy_views.invitation_accept,
        name="invitation-accept",
    ),
    # Links of invitations sent before invitations had their own page (set a password).
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url="/accounts/reset/done/"),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("console/", console_views.console, name="console"),
    path("console/login/", console_views.ConsoleLoginView.as_view(), name="console-login"),
    path(
        "console/logout/",
        auth_views.LogoutView.as_view(next_page="/console/login/"),
        name="console-logout",
    ),
    path("demo/api/order-status/", webchat_views.demo_order_status, name="demo-order-status"),
    path("demo/<str:public_key>/", webchat_views.demo_page, name="webchat-demo"),
    path("hooks/trello/", support_views.trello_webhook, name="trello-webhook"),
    path(
        "hooks/<str:kind>/<key:channel_id>/",
        channel_webhooks.channel_webhook,
        name="channel-webhook",
    ),
    path("regions/identity/", region_views.identity, name="regions-identity"),
    path("regions/bots/", bot_regions.bot_arrive_door, name="regions-bots"),
    path(
        "regions/tenants/<slug:slug>/bots/",
        bot_regions.tenant_bots_door,
        name="regions-tenant-bots",
    ),
    path(
        "webchat/<str:public_key>/region/",
        region_views.widget_region,
        name="webchat-region",
    ),
    path("api/v1/", include("chattonic.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler400 = "chattonic.core.api.json_bad_request"
handler404 = "chattonic.core.api.json_not_found"
handler500 = "chattonic.core.api.json_server_error"
