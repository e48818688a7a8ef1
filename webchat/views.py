"""Plain pages of the web chat: the demo page that hosts the widget, and the demo's data."""

from __future__ import annotations

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from bots.selectors import bot_by_public_key

DEMO_ORDERS = {
    "1001": {"status": "shipped", "eta": "tomorrow"},
    "1002": {"status": "being prepared", "eta": "in 3 days"},
}


@require_GET
def demo_page(request, public_key: str):
    """A plain page with the widget's one <script> tag, as a tenant would embed it."""
    bot = bot_by_public_key(public_key)
    if bot is None:
        raise Http404("No such bot.")
    return render(request, "webchat/demo.html", {"bot": bot})


@require_GET
def demo_order_status(request):
    """The local endpoint the demo bot's HTTP request node calls."""
    order = request.GET.get("order", "").strip()
    found = DEMO_ORDERS.get(order)
    if found is None:
        return JsonResponse({"error": "unknown order"}, status=404)
    return JsonResponse({"order": order, **found})
