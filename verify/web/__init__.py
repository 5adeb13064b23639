"""The analysts' review app: server-rendered pages and the JSON API."""
