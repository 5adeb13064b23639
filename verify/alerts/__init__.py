"""Alerts that reach people: events derived from the database, channels that format and send them, and
the outbox that delivers each alert once per channel, with retries (`deliver_alerts` is the entry)."""
