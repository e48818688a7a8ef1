"""The one ASGI application: HTTP (Django) and WebSockets (Channels)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chattonic.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from agents.routing import websocket_urlpatterns as console  # noqa: E402
from webchat.routing import websocket_urlpatterns as webchat  # noqa: E402

# Every app's WebSocket routes (their guards are in chattonic/routing.py).
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter([*webchat, *console]),
    }
)

from bots.nlu.encoder import warm_up_in_background  # noqa: E402
from bots.selectors import runtimes_warm_here  # noqa: E402

# The intent matcher's models, then the launched bots' matchers, before visitors need them.
warm_up_in_background(then=runtimes_warm_here)

from django.conf import settings  # noqa: E402

from webchat import lane_workers  # noqa: E402

# The web chat lane's worker processes (docs/webchat.md): /readyz waits for them too.
if settings.WEBCHAT_LANE_PROCESSES:
    lane_workers.start(settings.WEBCHAT_LANE_PROCESSES)

import gc  # noqa: E402

# Everything loaded so far (Django, the apps, the libraries) lives as long as the process: out
# of the collector's sight, a full collection walks only what requests and sockets made since.
# Measured under the web chat bench: full collections stalled the server 70-90 ms every
# 0.3-0.8 s, and 7-20 ms about once a second after this (docs/webchat.md).
gc.freeze()
