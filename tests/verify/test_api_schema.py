"""schemathesis over /openapi.json: no generated API request gets a 5xx, on SQLite or PostgreSQL."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from keys_for_tests import TEST_SECRET_ENV

from settings import load_settings
from storage.db import make_engine, make_session_factory
from verify.users import create_token, create_user
from verify.web.app import create_app

# A small, bounded run: the point is no crash on odd input, not exhaustive search.
MAX_EXAMPLES = 8


@pytest.fixture
def bearer(database_url: str, lead_adder, cheap_hashing: None) -> dict[str, str]:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        create_user(session, "robot", "robot-pw", "supervisor")
        token = create_token(session, "robot")
        for summary in ("路灯不亮", "<script>x</script>井盖", "燃气泄漏"):
            lead_adder(session, (summary,), summary=summary)
        session.commit()
    engine.dispose()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_schema(database_url: str, bearer: dict[str, str]):
    settings = load_settings(env=TEST_SECRET_ENV)
    settings = settings.changed(database={"url": database_url})
    app = create_app(settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app, headers=bearer)
    app.state.engine.dispose()


def test_no_api_operation_answers_with_a_server_error(api_schema, bearer: dict[str, str]) -> None:
    # Driven through Hypothesis directly (not schemathesis' pytest plugin), so the schema can come
    # from a fixture-built app on a fresh database.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:
            response = case.call(headers=bearer)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])

        no_server_error()
