"""How a WebSocket is guarded (the apps' ``routing.py`` use these; ``chattonic/asgi.py``
gathers their routes).

- ``staff_socket``: our own pages (the agent console). The ``Origin`` must be one of our
  hosts and the user comes from the dashboard session.
- Public sockets (the web chat widget) are opened from the tenants' own sites, whose
  origins are not our hosts: their consumer checks the bot's allowed origins itself.
"""

from channels.auth import AuthMiddleware
from channels.security.websocket import AllowedHostsOriginValidator

from chattonic.core.sockets import SocketSession


def signed_in(app):
    """``scope["user"]``: the dashboard's user, from its session cookie (or anonymous)."""
    return SocketSession(AuthMiddleware(app))


def staff_socket(app):
    return AllowedHostsOriginValidator(signed_in(app))
