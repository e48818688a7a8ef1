"""WebSocket routes of every app, and the two ways a socket is guarded.

- ``staff_socket``: our own pages (the agent console). The ``Origin`` must be one of our
  hosts and the user comes from the dashboard session.
- Public sockets (the web chat widget) are opened from the tenants' own sites, whose
  origins are not our hosts: their consumer checks the bot's allowed origins itself.
"""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator


def staff_socket(app):
    return AllowedHostsOriginValidator(AuthMiddlewareStack(app))


websocket_urlpatterns: list = []
