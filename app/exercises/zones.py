"""The room's clock face: which IANA time zone an exercise shows its times in."""

from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import Invalid

# A Japanese workshop is usually held in Japan; an English one has no such guess.
DEFAULT_TIME_ZONES = {"ja": "Asia/Tokyo", "en": "UTC"}
MAX_TIME_ZONE_LENGTH = 64


class _Zoned(Protocol):
    time_zone: str


def default_time_zone(locale: str) -> str:
    return DEFAULT_TIME_ZONES.get(locale, "UTC")


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def checked_time_zone(name: str) -> str:
    """`name` if it is an IANA zone this machine knows; 422 `invalid_time_zone` otherwise."""
    try:
        # ZoneInfo also accepts file paths relative to the zone folder; only plain names count.
        if not name or len(name) > MAX_TIME_ZONE_LENGTH or name.startswith(("/", ".")):
            raise ValueError(name)
        _zone(name)
    except (ValueError, ZoneInfoNotFoundError, OSError):
        raise Invalid(
            f"Unknown time zone {name[:MAX_TIME_ZONE_LENGTH]!r}: give an IANA name such as "
            "Asia/Tokyo, Europe/Berlin or UTC.",
            code="invalid_time_zone",
        ) from None
    return name


def zone_of(exercise: _Zoned) -> ZoneInfo:
    """The exercise's zone; UTC for a name this machine no longer knows (never an error)."""
    try:
        return _zone(exercise.time_zone or "UTC")
    except (ValueError, ZoneInfoNotFoundError, OSError):
        return _zone("UTC")
