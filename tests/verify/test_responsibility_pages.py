"""The responsibility list in the web app: admins list, add, edit, delete, import, export; others get 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, submit_login

from verify import responsibility
from verify.responsibility import RuleRow
from verify.users import create_user
from verify.web.app import create_app

PAGE = "/admin/responsibility"


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
    app.state.engine.dispose()


def sign_in(client: TestClient, session, name: str, role: str) -> str:
    """Sign in as a new account of ``role``; returns a CSRF token for later posts."""
    create_user(session, name, f"{name}-pw", role)
    session.commit()
    submit_login(client, name, f"{name}-pw")
    return csrf_of(client.get("/leads").text)


def units(session) -> list[tuple[str, str, str, str]]:
    session.expire_all()
    rules = responsibility.list_rules(session)
    session.commit()
    return [(r.category, r.district, r.street, r.unit) for r in rules]


def test_a_supervisor_is_refused_the_list_and_its_changes(client, session) -> None:
    token = sign_in(client, session, "sup", "supervisor")
    assert client.get(PAGE).status_code == 403
    refused = client.post(PAGE, data={"category": "城乡建设", "unit": "x", "csrf_token": token})
    assert refused.status_code == 403
    assert client.get(f"{PAGE}.csv").status_code == 403
    assert units(session) == []


def test_an_admin_adds_edits_and_deletes_rules_and_a_duplicate_is_refused_with_a_message(
    client, session
) -> None:
    token = sign_in(client, session, "root", "admin")
    added = client.post(
        PAGE,
        data={
            "category": "城乡建设",
            "district": "南山区",
            "unit": "深圳市南山区城市管理和综合执法局",
            "csrf_token": token,
        },
    )
    assert (added.status_code, added.headers["location"]) == (303, PAGE)
    assert "已添加：城乡建设 → 深圳市南山区城市管理和综合执法局" in client.get(PAGE).text
    duplicate = client.post(
        PAGE, data={"category": "城乡建设", "district": "南山区", "unit": "别的", "csrf_token": token}
    )
    assert duplicate.status_code == 400
    assert "a rule for 城乡建设 / 南山区 / 全区 already exists" in duplicate.text
    [rule] = responsibility.list_rules(session)
    rule_id = rule.id
    session.commit()
    assert 'value="深圳市南山区城市管理和综合执法局"' in client.get(f"{PAGE}/{rule_id}/edit").text
    edited = client.post(
        f"{PAGE}/{rule_id}/edit",
        data={
            "category": "城乡建设",
            "district": "南山区",
            "street": "粤海街道",
            "unit": "深圳市南山区粤海街道办事处",
            "csrf_token": token,
        },
    )
    assert edited.status_code == 303
    assert units(session) == [("城乡建设", "南山区", "粤海街道", "深圳市南山区粤海街道办事处")]
    assert client.post(f"{PAGE}/{rule_id}/delete", data={"csrf_token": token}).status_code == 303
    assert units(session) == []
    assert client.get(f"{PAGE}/{rule_id}/edit").status_code == 404


def test_an_admin_imports_a_csv_and_exports_it_back_byte_for_byte(client, session) -> None:
    token = sign_in(client, session, "root", "admin")
    responsibility.create(session=session, row=RuleRow("教育文体", "旧单位"), actor="admin")
    session.commit()
    text = (
        "category,district,street,unit,note\n"
        "交通运输,,,深圳市交通运输局,\n"
        "城乡建设,,,深圳市住房和建设局,住房\n"
    )
    imported = client.post(
        f"{PAGE}/import",
        data={"csrf_token": token, "replace": "true"},
        files={"file": ("list.csv", ("\ufeff" + text).encode(), "text/csv")},
    )
    assert imported.status_code == 303, imported.text
    assert "导入完成：新增 2 条，更新 0 条，未变 0 条，删除 1 条" in client.get(PAGE).text
    exported = client.get(f"{PAGE}.csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="responsibility.csv"'
    assert exported.content.decode("utf-8-sig") == text


def test_a_broken_csv_changes_nothing_and_names_the_line(client, session) -> None:
    token = sign_in(client, session, "root", "admin")
    responsibility.create(session=session, row=RuleRow("教育文体", "深圳市教育局"), actor="admin")
    session.commit()
    broken = "category,unit\n交通运输,深圳市交通运输局\n城乡建设,\n".encode()
    response = client.post(
        f"{PAGE}/import",
        data={"csrf_token": token, "replace": "true"},
        files={"file": ("x.csv", broken, "text/csv")},
    )
    assert response.status_code == 400
    assert "导入失败：line 3: unit is required" in response.text
    assert units(session) == [("教育文体", "", "", "深圳市教育局")]
