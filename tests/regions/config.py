"""The regions' configuration for tests: as CHATTONIC_REGIONS would make it (settings.py)."""

from __future__ import annotations

US = "https://us.chattonic.example"
EU = "https://eu.chattonic.example"
ACME = "https://acme.chattonic.example"

REGIONS = {
    "us-central": {"url": US, "code": "us", "number": 0, "label": "US Central"},
    "eu-frankfurt": {"url": EU, "code": "eu", "number": 1, "label": "EU Frankfurt"},
    "acme-private": {"url": ACME, "code": "acme", "number": 2, "label": "acme-private"},
}


def regions_configure(settings, here: str = "us-central", regions: dict | None = None) -> None:
    """Point ``settings`` (pytest-django's) at these regions, this deployment being ``here``."""
    regions = regions or REGIONS
    settings.REGIONS = regions
    settings.CHATTONIC_REGIONS = {name: entry["url"] for name, entry in regions.items()}
    settings.REGION_CHOICES = [(name, entry["label"]) for name, entry in regions.items()]
    settings.CHATTONIC_REGION = here
