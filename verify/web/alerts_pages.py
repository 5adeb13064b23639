"""The alerts page for supervisors and admins: recent alerts with each channel's delivery, the deliveries
that failed after their tries, and a button (behind the app's CSRF check) that sends one again."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from storage.base import utcnow
from storage.vocabulary import ALERT_KIND_LABELS, DELIVERY_STATE_LABELS, DeliveryState
from verify.alerts.delivery import open_deliveries, recent_alerts, retry_delivery
from verify.web.deps import MAX_ROW_ID, DbSession, SupervisorPage
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)
ALERTS_PAGE = "/alerts"
#: Alerts listed on the page, newest first.
SHOWN_ALERTS = 100


@router.get(ALERTS_PAGE)
def alerts_page(request: Request, session: DbSession, user: SupervisorPage) -> Response:
    waiting = open_deliveries(session)
    context = {
        "user": user,
        "alerts": recent_alerts(session, SHOWN_ALERTS),
        "failed": [d for d in waiting if d.state == DeliveryState.FAILED],
        "pending": [d for d in waiting if d.state == DeliveryState.PENDING],
        "kind_labels": ALERT_KIND_LABELS,
        "delivery_labels": DELIVERY_STATE_LABELS,
    }
    return render(request, "alerts.html", context)


@router.post(ALERTS_PAGE + "/deliveries/{delivery_id}/retry")
def retry(request: Request, session: DbSession, user: SupervisorPage, delivery_id: int) -> Response:
    delivery = retry_delivery(session, delivery_id, utcnow()) if 1 <= delivery_id <= MAX_ROW_ID else None
    if delivery is None:
        session.rollback()
        request.session["flash"] = "没有这条发送失败的告警投递。"
        return see_other(ALERTS_PAGE)
    session.commit()
    request.session["flash"] = (
        f"已重新排队：告警 #{delivery.alert_id} 经 {delivery.channel} 将在下一轮（30 秒内）重发。"
    )
    return see_other(ALERTS_PAGE)
