"""The county's calendar: what "today" means when a request names no date."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from app.core.config import get_settings


def county_today() -> date:
    """Today in the county's time zone (TIMEZONE), the calendar deadlines are counted in: a server
    on UTC would otherwise call 00:00–08:00 in Xiji "yesterday"."""
    return datetime.now(ZoneInfo(get_settings().timezone)).date()
