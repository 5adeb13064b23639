"""Scrapy's in-memory stats collector without its per-attribute proxy.

Scrapy 2.19's ``StatsCollector.__getattribute__`` runs on every attribute access of the collector: it
looks for a cached wrapper (``_cached_<name>``) that warns when a caller passes the deprecated
``spider`` argument, so each ``inc_value`` builds two attribute names and catches an AttributeError
(the one for ``self._stats`` inside the method). A sweep counts a few thousand stats per platform.
weisu never passes ``spider`` to the stats, so this collector reads its attributes directly; the
stats it keeps, and when, are Scrapy's own (MemoryStatsCollector's methods, unchanged).
"""

from __future__ import annotations

from scrapy.statscollectors import MemoryStatsCollector


class PlainStatsCollector(MemoryStatsCollector):
    """MemoryStatsCollector with plain attribute access (no deprecated-argument proxy)."""

    __getattribute__ = object.__getattribute__
