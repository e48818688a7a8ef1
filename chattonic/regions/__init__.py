"""Regions as separate deployments: which region an identifier names, from the identifier alone.

Every identifier that reaches a door from outside carries its region (docs/regions.md):

- string identifiers (widget keys, API keys' prefixes, invitation links' tokens) start with
  the region's code and a dot: ``eu.Xq3…``, ``ct_eu.4f1c…_…``;
- database ids (bots, channels in webhook URLs, conversations, …) are drawn from the region's
  block: region number * ``REGION_ID_STRIDE`` onwards (``chattonic.regions.sequences``);
  a visitor's session token names its bot's id.

A deployment that receives another region's identifier answers 421 with that region's base
URL before any database lookup (``chattonic.regions.middleware``, the web chat socket's
connect). The prefix only routes: a local identifier is still looked up and checked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings

from chattonic.core.errors import WrongRegion

SEPARATOR = "."


@dataclass(frozen=True)
class Region:
    name: str
    url: str
    code: str
    number: int
    label: str

    @property
    def id_floor(self) -> int:
        """The first database id of this region's block."""
        return self.number * settings.REGION_ID_STRIDE

    @property
    def is_here(self) -> bool:
        return self.name == settings.CHATTONIC_REGION


def regions() -> dict[str, Region]:
    """Every region of CHATTONIC_REGIONS, by name."""
    return {name: Region(name=name, **entry) for name, entry in settings.REGIONS.items()}


def here() -> Region:
    """This deployment's region (CHATTONIC_REGION)."""
    return regions()[settings.CHATTONIC_REGION]


def region_named(name: str) -> Region | None:
    return regions().get(name)


def region_of_code(code: str) -> Region | None:
    return next((r for r in regions().values() if r.code == code), None)


def region_of_id(pk: int) -> Region | None:
    """The region whose block holds this database id, or None (no region's)."""
    if isinstance(pk, bool) or not isinstance(pk, int) or pk < 0:
        return None
    number = pk // settings.REGION_ID_STRIDE
    return next((r for r in regions().values() if r.number == number), None)


def region_of_token(token: str) -> Region | None:
    """The region a string identifier's prefix names (``eu.…``), or None: no prefix (a key
    made before identifiers carried their region), or a code of no region."""
    code, dot, rest = (token or "").partition(SEPARATOR)
    if not dot or not rest:
        return None
    return region_of_code(code)


def region_of_api_key(token: str) -> Region | None:
    """The region of an API key (``ct_<code>.<hex>_<secret>``) from its prefix alone."""
    parts = (token or "").split("_", 2)
    if len(parts) != 3 or parts[0] != "ct":
        return None
    return region_of_token(parts[1])


def token_new(nbytes: int, *, hex_only: bool = False) -> str:
    """A new random identifier of this region: ``<code>.<random>``."""
    random = secrets.token_hex(nbytes) if hex_only else secrets.token_urlsafe(nbytes)
    return f"{here().code}{SEPARATOR}{random}"


def elsewhere(region: Region | None) -> Region | None:
    """The region if it is another deployment's; None for this one's or for none."""
    return None if region is None or region.is_here else region


def refusal(region: Region) -> dict:
    """What a door answers for another region's identifier: code, status, message, region and
    that region's base URL."""
    return {
        "code": WrongRegion.code,
        "status": WrongRegion.status,
        "message": f"This is served in region {region.name}: use {region.url}.",
        "region": region.name,
        "url": region.url,
    }


def wrong_region(region: Region) -> WrongRegion:
    """The 421 (``WrongRegion``) for a request that belongs to ``region``."""
    answer = refusal(region)
    return WrongRegion(answer["message"], extra={"region": answer["region"], "url": answer["url"]})


def this_region() -> str:
    """The default of the models' region fields: this deployment's region."""
    return settings.CHATTONIC_REGION


def region_choices() -> list[tuple[str, str]]:
    """The regions as a model field's choices (CHATTONIC_REGIONS, read when asked)."""
    return list(settings.REGION_CHOICES)
