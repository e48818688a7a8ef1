"""Small flows shared by the tests of every app."""

SIMPLE_FLOW = {
    "start": "hello",
    "main": "menu",
    "intents": [
        {
            "name": "pricing",
            "phrases": ["how much is it", "prices", "what does it cost", "pricing plans"],
        },
        {
            "name": "track_order",
            "phrases": ["where is my order", "track my package", "order status"],
        },
    ],
    "nodes": {
        "hello": {
            "type": "message",
            "text": "What can I do for you?",
            "quick_replies": [
                {"title": "Prices", "next": "prices"},
                {"title": "Email me", "next": "ask_email"},
            ],
            "other": "menu",
        },
        "menu": {"type": "router", "routes": {"pricing": "prices"}},
        "prices": {"type": "message", "text": "Plans start at $10.", "next": "menu"},
        "ask_email": {
            "type": "question",
            "text": "What's your email?",
            "variable": "email",
            "validation": "email",
            "next": "thanks",
        },
        "thanks": {"type": "capture_lead", "variables": ["email"], "next": "bye"},
        "bye": {"type": "end", "text": "Thanks, we'll write to {{email}}."},
    },
}
