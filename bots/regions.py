"""A deployment serves the bots of its own region only."""

from __future__ import annotations

from django.conf import settings

from chattonic.core.errors import WrongRegion


def region_url(region: str) -> str:
    return settings.CHATTONIC_REGIONS.get(region, "")


def bot_ensure_local(bot) -> None:
    """Refuse (421) a request that reached this region for a bot of another region."""
    if bot.region != settings.CHATTONIC_REGION:
        url = region_url(bot.region)
        raise WrongRegion(
            f"This bot is served in region {bot.region}: use {url}.",
            extra={"region": bot.region, "url": url},
        )
