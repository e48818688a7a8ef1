from django.urls import path

from chattonic.routing import signed_in
from conversations.consumers import WebchatConsumer

# Opened from the tenants' sites: the consumer checks the bot's allowed origins itself.
# The session middleware only serves the dashboard's sandbox ("Test this bot").
websocket_urlpatterns = [
    path("ws/webchat/<str:public_key>/", signed_in(WebchatConsumer.as_asgi())),
]
