"""Ticket payloads: a promoted lead as an Open311 GeoReport v2 service request (form fields)."""

from __future__ import annotations

from settings import Settings
from storage.models import Lead

#: Open311 leaves description length to the server; 4,000 characters keeps every known system happy.
MAX_DESCRIPTION = 4000


def idempotency_key(lead_id: int) -> str:
    """Derived from the lead alone, so a retried or repeated push always carries the same key."""
    return f"weisu-lead-{lead_id}"


def service_code(category: str | None, settings: Settings) -> str:
    codes = settings.dispatch.service_codes
    return codes.get(category or "", settings.dispatch.default_service_code)


def address_string(lead: Lead, settings: Settings) -> str:
    parts = [settings.city.name, lead.district, lead.street, lead.landmark]
    return "".join(part for part in parts if part)


def build_payload(lead: Lead, settings: Settings) -> dict[str, str]:
    """The request fields stored in the outbox; the api_key is added at push time, never stored."""
    description = lead.summary
    if lead.responsible_unit:
        description = f"{description}\n责任单位: {lead.responsible_unit}"
    payload = {
        "jurisdiction_id": settings.dispatch.jurisdiction_id,
        "service_code": service_code(lead.category, settings),
        "description": description[:MAX_DESCRIPTION],
        "address_string": address_string(lead, settings),
        "attribute[urgency]": lead.priority.value,
        "attribute[lead_id]": str(lead.id),
        "attribute[idempotency_key]": idempotency_key(lead.id),
    }
    if lead.category:
        payload["attribute[category]"] = lead.category
    if lead.responsible_unit:
        payload["attribute[responsible_unit]"] = lead.responsible_unit
    return payload
