"""The responsibility list (职责清单): most specific match wins, CSV in and out, the starter list."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import delete, select

from settings import PROJECT_ROOT
from storage.models import ResponsibilityRule
from verify import responsibility
from verify.responsibility import ResponsibilityError, RuleRow, suggest_unit

STARTER = PROJECT_ROOT / "verify" / "data" / "responsibility_shenzhen.csv"


def add(session, category: str, unit: str, district: str = "", street: str = "") -> None:
    responsibility.create(session=session, row=RuleRow(category, unit, district, street), actor="admin")


@pytest.fixture
def rules(session):
    add(session, "城乡建设", "深圳市住房和建设局")
    add(session, "城乡建设", "深圳市南山区城市管理和综合执法局", district="南山区")
    add(session, "城乡建设", "深圳市南山区粤海街道办事处", district="南山区", street="粤海街道")
    add(session, "交通运输", "深圳市交通运输局")
    session.commit()
    return session


@pytest.mark.parametrize(
    ("category", "district", "street", "unit"),
    [
        ("城乡建设", "南山区", "粤海街道", "深圳市南山区粤海街道办事处"),
        ("城乡建设", "南山区", "蛇口街道", "深圳市南山区城市管理和综合执法局"),
        ("城乡建设", "福田区", "华强北街道", "深圳市住房和建设局"),
        ("城乡建设", None, None, "深圳市住房和建设局"),
        ("交通运输", "南山区", "粤海街道", "深圳市交通运输局"),
        ("卫生计生", "南山区", None, None),
        (None, "南山区", None, None),
    ],
)
def test_the_most_specific_matching_rule_names_the_unit(rules, category, district, street, unit) -> None:
    assert suggest_unit(rules, category, district, street) == unit


def test_a_second_rule_for_the_same_place_is_refused_and_the_first_kept(rules) -> None:
    with pytest.raises(ResponsibilityError, match="a rule for 城乡建设 / 南山区 / 全区 already exists"):
        add(rules, "城乡建设", "别的单位", district="南山区")
    rules.commit()
    assert suggest_unit(rules, "城乡建设", "南山区", None) == "深圳市南山区城市管理和综合执法局"


def test_an_edited_rule_changes_the_suggestion_and_a_deleted_one_falls_back(rules) -> None:
    street_rule = rules.scalars(
        select(ResponsibilityRule).where(ResponsibilityRule.street == "粤海街道")
    ).one()
    row = RuleRow("城乡建设", "深圳市南山区粤海街道综合行政执法队", "南山区", "粤海街道")
    responsibility.update(session=rules, rule_id=street_rule.id, row=row, actor="root")
    assert suggest_unit(rules, "城乡建设", "南山区", "粤海街道") == "深圳市南山区粤海街道综合行政执法队"
    assert street_rule.updated_by == "root"
    responsibility.remove(session=rules, rule_id=street_rule.id)
    assert suggest_unit(rules, "城乡建设", "南山区", "粤海街道") == "深圳市南山区城市管理和综合执法局"


def test_a_row_without_a_unit_or_with_an_overlong_field_is_refused() -> None:
    with pytest.raises(ResponsibilityError, match="^line 3: unit is required$"):
        responsibility.clean_row({"category": "城乡建设", "unit": "  "}, where="line 3")
    with pytest.raises(ResponsibilityError, match="^district is longer than 50 characters$"):
        responsibility.clean_row({"category": "城乡建设", "unit": "x", "district": "区" * 51})


def test_csv_export_then_import_into_an_empty_list_gives_the_same_rules(rules) -> None:
    exported = responsibility.export_csv(rules)
    assert exported.splitlines()[:3] == [
        "category,district,street,unit,note",
        "交通运输,,,深圳市交通运输局,",
        "城乡建设,,,深圳市住房和建设局,",
    ]
    rules.execute(delete(ResponsibilityRule))
    summary = responsibility.import_rows(
        session=rules, rows=responsibility.read_csv(io.StringIO(exported)), actor="admin"
    )
    assert (summary.added, summary.updated, summary.removed) == (4, 0, 0)
    assert responsibility.export_csv(rules) == exported


def test_an_import_updates_changed_units_adds_new_rows_and_with_replace_removes_the_rest(rules) -> None:
    text = (
        "category,district,street,unit,note\n"
        "城乡建设,,,深圳市住房和建设局,\n"
        "城乡建设,南山区,,南山区新单位,改名\n"
        "卫生计生,,,深圳市卫生健康委员会,\n"
    )
    summary = responsibility.import_rows(
        session=rules, rows=responsibility.read_csv(io.StringIO(text)), actor="admin", replace=True
    )
    assert summary.summary() == "新增 1 条，更新 1 条，未变 1 条，删除 2 条"
    assert [(r.category, r.district, r.street, r.unit) for r in responsibility.list_rules(rules)] == [
        ("卫生计生", "", "", "深圳市卫生健康委员会"),
        ("城乡建设", "", "", "深圳市住房和建设局"),
        ("城乡建设", "南山区", "", "南山区新单位"),
    ]


def test_a_csv_with_a_repeated_place_or_no_unit_column_is_refused_whole() -> None:
    repeated = "category,unit\n城乡建设,甲\n城乡建设,乙\n"
    with pytest.raises(ResponsibilityError, match="^line 3: 城乡建设 /  /  repeated$"):
        responsibility.read_csv(io.StringIO(repeated))
    with pytest.raises(ResponsibilityError, match="^CSV header lacks: unit$"):
        responsibility.read_csv(io.StringIO("category,district\n城乡建设,南山区\n"))


def test_the_starter_list_is_loaded_once_into_an_empty_database_and_names_real_units(session) -> None:
    added = responsibility.seed_if_empty(session=session, path=STARTER)
    again = responsibility.seed_if_empty(session=session, path=STARTER)
    assert (added, again) == (24, 0)
    assert suggest_unit(session, "城乡建设", "龙岗区", None) == "深圳市龙岗区城市管理和综合执法局"
    assert suggest_unit(session, "环境保护", "南山区", "蛇口街道") == "深圳市生态环境局南山管理局"
    assert suggest_unit(session, "环境保护", "坪山区", None) == "深圳市生态环境局"
    assert suggest_unit(session, "劳动和社会保障", "福田区", None) == "深圳市人力资源和社会保障局"
    assert suggest_unit(session, "卫生计生", None, None) == "深圳市卫生健康委员会"


def test_weisu_init_loads_the_configured_starter_list_and_keeps_an_edited_one(tmp_path) -> None:
    from typer.testing import CliRunner

    from cli import app
    from storage.db import make_engine, make_session_factory

    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'init.db'}"}
    runner = CliRunner()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    engine = make_engine(env["WEISU_DATABASE_URL"])
    with make_session_factory(engine)() as session:
        assert len(responsibility.list_rules(session)) == 24
        responsibility.remove(session=session, rule_id=responsibility.list_rules(session)[0].id)
        session.commit()
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    with make_session_factory(engine)() as session:
        assert len(responsibility.list_rules(session)) == 23
    engine.dispose()
