from channels.auth import AuthMiddlewareStack
from django.urls import path

from conversations.consumers import WebchatConsumer

# Opened from the tenants' sites: the consumer checks the bot's allowed origins itself.
# The session middleware only serves the dashboard's sandbox ("Test this bot").
websocket_urlpatterns = [
    path("ws/webchat/<str:public_key>/", AuthMiddlewareStack(WebchatConsumer.as_asgi())),
]
