"""A deployment holds the bots of its own region only (CHATTONIC_REGION); a request for a bot
of another region is answered 421 with the base URL of the bot's region (CHATTONIC_REGIONS).

The doors answer that from the identifier alone (``chattonic.regions.middleware``, the web
chat socket's connect); what is here checks a bot that was found, as a guard: REST views
``bot_ensure_local`` (raises WrongRegion, which the API's exception handler turns into the
JSON body); sockets and webhook views, which shape their own answers, ``region_refusal``.

``bot_arrive_door`` is the signed door through which a draft moved from another region
arrives (``bots.services.bot_move`` there, ``bot_arrive`` here); ``tenant_bots_door`` lists a
tenant's bots of this region for the other regions' dashboards (``bots_elsewhere``)."""

from __future__ import annotations

from django.conf import settings
from django.views.decorators.http import require_GET, require_POST

from bots import services
from bots.models import Bot
from chattonic.core import inputs
from chattonic.core.errors import ServiceError, ValidationFailed, WrongRegion
from chattonic.regions import refusal, region_named, regions
from chattonic.regions.exchange import identity_import, peer_call
from chattonic.regions.views import signed_door
from chattonic.tenancy.models import Tenant


def region_refusal(bot) -> dict | None:
    """None for a bot of this region; else what to answer: code, status, message, region, url."""
    return region_refusal_for(bot.region)


def region_refusal_for(region: str) -> dict | None:
    """``region_refusal`` from the bot's region alone (a door that did not load the bot)."""
    if region == settings.CHATTONIC_REGION:
        return None
    named = region_named(region)
    if named is None:
        return {
            "code": "wrong_region",
            "status": 421,
            "message": f"This bot is served in region {region}, which this deployment "
            "does not know.",
            "region": region,
            "url": "",
        }
    return refusal(named)


def bot_ensure_local(bot) -> None:
    """Refuse (421) a request that reached this region for a bot of another region."""
    answer = region_refusal(bot)
    if answer is not None:
        raise WrongRegion(
            answer["message"], extra={"region": answer["region"], "url": answer["url"]}
        )


@require_GET
@signed_door
def tenant_bots_door(request, source, slug: str):
    """The bots a tenant has in this region (id, name, status), for the other regions'
    dashboards to list and link here; nothing of their conversations."""
    tenant = Tenant.objects.filter(slug=slug).first()
    return {"region": settings.CHATTONIC_REGION, "bots": bots_listed(tenant)}


def bots_listed(tenant) -> list[dict]:
    if tenant is None:
        return []
    return list(Bot.objects.for_tenant(tenant).order_by("name").values("id", "name", "status"))


def bots_elsewhere(tenant) -> list[dict]:
    """The tenant's bots in every other region, asked of each region's deployment (signed):
    ``[{"region", "label", "url", "bots": [...], "error": str | None}]``. Nothing when the
    exchange is off; a region that does not answer is listed with its error."""
    if not settings.CHATTONIC_REGIONS_SECRET or tenant is None:
        return []
    listed = []
    for region in regions().values():
        if region.is_here:
            continue
        entry = {"region": region.name, "label": region.label, "url": region.url}
        try:
            answer = peer_call(region, "GET", f"/regions/tenants/{tenant.slug}/bots/", timeout=3)
            bots = [
                {**bot, "status": dict(Bot.Status.choices).get(bot["status"], bot["status"])}
                for bot in answer.get("bots", [])
            ]
            entry.update(bots=bots, error=None)
        except ServiceError as exc:
            entry.update(bots=[], error=f"{region.label} did not answer ({exc.message}).")
        listed.append(entry)
    return listed


@require_POST
@signed_door
def bot_arrive_door(request, source):
    """A draft bot moved here from ``source``: its tenant's identity rows first, then the bot
    (settings, draft, versions). Answers the new bot's id."""
    data = inputs.loads(request.body, field="body")
    if not isinstance(data, dict) or not isinstance(data.get("bot"), dict):
        raise ValidationFailed.for_field("bot", "The moved bot is missing.")
    identity_import(data.get("identity") or {}, source=source)
    tenant = Tenant.objects.filter(slug=data.get("tenant")).first()
    if tenant is None:
        raise ValidationFailed.for_field("tenant", "This tenant is unknown here.")
    bot = services.bot_arrive(tenant=tenant, bot=data["bot"], versions=data.get("versions") or [])
    return {"id": bot.pk, "region": bot.region, "public_key": bot.public_key}
