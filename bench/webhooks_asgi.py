"""The platform's ASGI application plus a bare DRF view at ``/bench/bare/`` that writes one
row, for bench/webhooks.py: the baseline is served by the same server process, the same
Django stack (middleware, DRF, database), so that the two are measured side by side.
Production routing never mounts it.

    uvicorn bench.webhooks_asgi:application
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

import chattonic.urls  # noqa: E402
from chattonic.asgi import application  # noqa: E402, F401
from contacts.models import Contact  # noqa: E402

BARE_PATH = "bench/bare/"


class BareView(APIView):
    """Reads the body, writes one row, answers 200: what any webhook door must at least do."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []

    def post(self, request):
        body = request._request.body
        Contact.objects.create(tenant_id=int(request.GET["tenant"]), name=str(len(body)))
        return Response({"ok": True})


urlpatterns = [path(BARE_PATH, BareView.as_view()), *chattonic.urls.urlpatterns]
handler404 = chattonic.urls.handler404
handler500 = chattonic.urls.handler500
settings.ROOT_URLCONF = __name__
