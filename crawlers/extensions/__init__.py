"""Scrapy extensions of the weisu crawler."""
