"""The hub network parcelflow models: hubs (IATA codes) and the cities trucks serve."""

from __future__ import annotations

HUBS: tuple[str, ...] = ("LGG", "HGH", "KUL", "DXB", "SVO")
"""Liège (European gateway), Hangzhou (origin), Kuala Lumpur, Dubai, Moscow."""

HUB_NAMES: dict[str, str] = {
    "LGG": "Liège",
    "HGH": "Hangzhou",
    "KUL": "Kuala Lumpur",
    "DXB": "Dubai",
    "SVO": "Moscow",
}
