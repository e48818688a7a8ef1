from django.urls import path

from agents.consumers import AgentConsumer
from chattonic.routing import staff_socket

websocket_urlpatterns = [
    path("ws/agent/", staff_socket(AgentConsumer.as_asgi())),
]
