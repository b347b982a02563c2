"""Is a moment inside a pass's weekly schedule, in the site's time zone?"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from .claims import Window


def in_schedule(windows: Sequence[Window], now: float, tz: tzinfo) -> bool:
    """True when ``now`` (epoch seconds) falls in one of the windows, read on the site's
    wall clock: across a DST change a 08:00-18:00 window stays 08:00-18:00 local time, and a
    window that does not exist that day (in the skipped hour) simply is not open."""
    local = datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    today = 1 << local.weekday()             # bit 0 = Monday
    yesterday = 1 << ((local.weekday() - 1) % 7)
    for w in windows:
        if w.start < w.end:
            if w.days & today and w.start <= minute < w.end:
                return True
        # past midnight: the evening part on a listed day, the morning part on the day after
        elif (w.days & today and minute >= w.start) or (w.days & yesterday and minute < w.end):
            return True
    return False
