"""Supervisors' page of the scheduled jobs: each one's schedule, next run and last outcome; recent runs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from storage.job_runs import job_statuses, run_history
from storage.vocabulary import JOB_OUTCOME_LABELS
from verify.web.deps import DbSession, SupervisorPage, get_settings
from verify.web.pages import render

router = APIRouter(include_in_schema=False)
JOBS_PAGE = "/admin/jobs"
#: Runs listed under the jobs, newest first.
RECENT_RUNS = 50


@router.get(JOBS_PAGE)
def jobs_page(request: Request, session: DbSession, user: SupervisorPage) -> Response:
    settings = get_settings(request)
    schedules = settings.schedules.jobs
    context = {
        "user": user,
        "statuses": job_statuses(session, schedules),
        "schedules": schedules,
        "runs": run_history(session, limit=RECENT_RUNS),
        "job_outcome_labels": JOB_OUTCOME_LABELS,
    }
    return render(request, "admin_jobs.html", context)
