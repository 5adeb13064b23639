"""Scrapy middlewares, one per module: Retry-After (downloader) and evidence stamping (spider)."""
