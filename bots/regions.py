"""A deployment serves the bots of its own region only (CHATTONIC_REGION); a request for a bot
of another region is refused with 421 and the base URL of the bot's region (CHATTONIC_REGIONS).

Every door uses one of these: REST views ``bot_ensure_local`` (raises WrongRegion, which the
API's exception handler turns into the JSON body); sockets and webhook views, which shape their
own answers, ``region_refusal`` (the same code, message, region and URL as a dict)."""

from __future__ import annotations

from django.conf import settings

from chattonic.core.errors import WrongRegion


def region_url(region: str) -> str:
    return settings.CHATTONIC_REGIONS.get(region, "")


def region_refusal(bot) -> dict | None:
    """None for a bot of this region; else what to answer: code, status, message, region, url."""
    return region_refusal_for(bot.region)


def region_refusal_for(region: str) -> dict | None:
    """``region_refusal`` from the bot's region alone (a door that did not load the bot)."""
    if region == settings.CHATTONIC_REGION:
        return None
    url = region_url(region)
    return {
        "code": WrongRegion.code,
        "status": WrongRegion.status,
        "message": f"This bot is served in region {region}: use {url}.",
        "region": region,
        "url": url,
    }


def bot_ensure_local(bot) -> None:
    """Refuse (421) a request that reached this region for a bot of another region."""
    refusal = region_refusal(bot)
    if refusal is not None:
        raise WrongRegion(
            refusal["message"], extra={"region": refusal["region"], "url": refusal["url"]}
        )
