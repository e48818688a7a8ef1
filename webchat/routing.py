from django.urls import path

from webchat.consumers import WebchatConsumer

# Opened from the tenants' sites: the consumer checks the bot's allowed origins itself.
# No session middleware: visitors are anonymous; the dashboard's sandbox ("Test this bot")
# reads the session itself, in the socket's one opening query's thread.
websocket_urlpatterns = [
    path("ws/webchat/<str:public_key>/", WebchatConsumer.as_asgi()),
]
