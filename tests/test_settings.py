"""config.yaml loading: typed values, one-line errors naming file/key/reason, environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from keys_for_tests import TEST_AUTHOR_HASH_KEY, TEST_SECRET_ENV, TEST_SECRET_KEY
from pydantic import ValidationError

from settings import ENV_FIELDS, ENV_OVERRIDES, PROJECT_ROOT, ConfigError, load_settings, rebase_url

PLATFORM = """
platforms:
  weibo:
    name: 微博
    kind: json_feed
    base_url: https://m.weibo.cn
    entry_points:
      - url: /api/container/getIndex?page={page}
    fields: {items: "data.cards[].mblog", external_id: id, text: text}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_loads() -> None:
    settings = load_settings(PROJECT_ROOT / "config.yaml", env={})
    assert settings.city.name == "深圳"
    assert settings.enabled_platforms()


def test_unknown_key_names_file_key_path_and_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("kind: json_feed", "kind: json_feed\n    knd: typo"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == f"{path}: platforms.weibo.knd: Extra inputs are not permitted"


def test_wrong_kind_is_refused_with_the_allowed_values(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("kind: json_feed", "kind: jsonfeed"))
    with pytest.raises(ConfigError, match=r"platforms\.weibo\.kind: Input should be 'json_feed'"):
        load_settings(path, env={})


def test_relative_base_url_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, PLATFORM.replace("https://m.weibo.cn", "m.weibo.cn"))
    with pytest.raises(ConfigError, match=r"platforms\.weibo\.base_url: Value error, must be an absolute"):
        load_settings(path, env={})


def test_a_missing_starter_responsibility_list_stops_at_load(tmp_path: Path) -> None:
    # Seeding from a missing file used to add nothing, silently; every promotion then fell back.
    path = _write(tmp_path, PLATFORM + "dispatch:\n  responsibility_csv: verify/data/missing.csv\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value) == (
        f"{path}: dispatch.responsibility_csv: Value error, no such file: verify/data/missing.csv"
    )


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r": line \d+: not valid YAML$"):
        load_settings(path, env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_environment_overrides_database_dispatch_and_secrets(tmp_path: Path) -> None:
    env = {
        "WEISU_DATABASE_URL": "postgresql://u@db/weisu",
        "WEISU_DISPATCH_URL": "http://dispatch.invalid",
        "WEISU_DISPATCH_API_KEY": "k-123",
        "WEISU_AUTHOR_HASH_KEY": TEST_AUTHOR_HASH_KEY,
    }
    settings = load_settings(_write(tmp_path, PLATFORM), env=env)
    assert settings.database_url == "postgresql://u@db/weisu"
    assert settings.dispatch.base_url == "http://dispatch.invalid"
    assert settings.dispatch.api_key == "k-123"
    assert settings.author_hash_key == TEST_AUTHOR_HASH_KEY


def test_secrets_are_not_dumped_with_the_settings(tmp_path: Path) -> None:
    env = {"WEISU_DISPATCH_API_KEY": "k-123", **TEST_SECRET_ENV}
    dumped = str(load_settings(_write(tmp_path, PLATFORM), env=env).model_dump())
    assert "k-123" not in dumped and "author_hash_key" not in dumped and "secret_key" not in dumped
    assert TEST_AUTHOR_HASH_KEY not in dumped and TEST_SECRET_KEY not in dumped


def test_simulator_url_rebases_every_platform(tmp_path: Path) -> None:
    env = {"WEISU_SIMULATOR_URL": "http://127.0.0.1:8010"}
    settings = load_settings(_write(tmp_path, PLATFORM), env=env)
    assert settings.platforms["weibo"].base_url == "http://127.0.0.1:8010/p/weibo"


def test_rebase_keeps_path_and_query() -> None:
    assert (
        rebase_url("https://tieba.baidu.com/f?kw=深圳", "http://127.0.0.1:9/", "tieba")
        == "http://127.0.0.1:9/p/tieba/f?kw=深圳"
    )


def test_relative_sqlite_path_is_anchored_at_the_project_root(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, PLATFORM), env={})
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var/weisu.db'}"


def test_review_session_cookie_and_proxy_defaults() -> None:
    review = load_settings(PROJECT_ROOT / "config.yaml", env={}).review
    assert (review.session_idle_minutes, review.session_absolute_hours) == (30, 12)
    assert (review.cookie_secure, review.trusted_proxies) == (True, [])


# --- one model per spider kind ---------------------------------------------------------------------

BOARD = """
platforms:
  tieba:
    name: 百度贴吧
    kind: html_board
    base_url: https://tieba.baidu.com
    entry_points:
      - url: /f?kw={keyword}&pn={page}
        keywords: [深圳]
    fields: {items: li.j_thread_list, external_id: "::attr(data-tid)", link: a.j_th_tit::attr(href)}
    pagination: {style: offset, start: 0, page_size: 50, max_pages: 3}
"""


def _refusal(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    return str(caught.value).removeprefix(f"{path}: ")


def test_a_typo_in_a_field_name_names_the_platform_and_the_field(tmp_path: Path) -> None:
    text = PLATFORM.replace("external_id: id", "extrenal_id: id")
    assert _refusal(tmp_path, text) == "platforms.weibo.fields.extrenal_id: Extra inputs are not permitted"


def test_a_field_another_kind_reads_is_refused(tmp_path: Path) -> None:
    text = BOARD.replace("link: a.j_th_tit", "children: replies, link: a.j_th_tit")
    assert _refusal(tmp_path, text) == "platforms.tieba.fields.children: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("key", "value"),
    [("response", "{format: jsonp}"), ("discover", "{from: [weibo]}")],
)
def test_a_key_only_json_kinds_read_is_refused_on_a_board(tmp_path: Path, key: str, value: str) -> None:
    text = BOARD + f"    {key}: {value}\n"
    assert _refusal(tmp_path, text) == f"platforms.tieba.{key}: Extra inputs are not permitted"


def test_a_json_path_with_an_empty_segment_is_refused(tmp_path: Path) -> None:
    text = PLATFORM.replace("text: text", "text: data..text")
    assert _refusal(tmp_path, text) == (
        "platforms.weibo.fields.text: Value error, 'data..text' is not a JSON path "
        "(keys joined by dots, [] or [n] after a key)"
    )


def test_a_url_template_with_an_unmatched_brace_is_refused(tmp_path: Path) -> None:
    text = PLATFORM.replace("text: text}", "text: text, url: '{base_url}/detail/{mid'}")
    assert _refusal(tmp_path, text) == (
        "platforms.weibo.fields.url: Value error, '{base_url}/detail/{mid' has an unmatched brace"
    )


def test_a_selector_that_parses_neither_as_css_nor_xpath_is_refused(tmp_path: Path) -> None:
    text = BOARD.replace("items: li.j_thread_list", "items: 'li[[j_thread'")
    assert _refusal(tmp_path, text) == (
        "platforms.tieba.fields.items: Value error, 'li[[j_thread' is neither a CSS selector "
        "nor an XPath expression"
    )


def test_a_missing_kind_is_named_as_the_key_it_is(tmp_path: Path) -> None:
    text = PLATFORM.replace("    kind: json_feed\n", "")
    assert _refusal(tmp_path, text) == "platforms.weibo.kind: Field required"


def test_the_old_page_parameter_key_is_gone_the_url_template_names_it(tmp_path: Path) -> None:
    text = PLATFORM + "    pagination: {style: page, param: page}\n"
    assert _refusal(tmp_path, text) == "platforms.weibo.pagination.param: Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("pagination", "reason"),
    [
        ("{style: cursor}", "platforms.weibo.pagination: Value error, style cursor needs cursor_path"),
        (
            "{style: page, next_selector: a.next::attr(href)}",
            "platforms.weibo.pagination: Value error, next_selector is read only with style next_link, "
            "this is style page",
        ),
        (
            "{style: next_link, next_selector: a.next::attr(href)}",
            "platforms.weibo: Value error, pagination.style: next_link is not one of this kind's "
            "(cursor, none, offset, page)",
        ),
        (
            "{style: cursor, cursor_path: data.next, total_path: data.total}",
            "platforms.weibo.pagination: Value error, total_path is read only with style page or offset, "
            "this is style cursor",
        ),
        ("{style: page, has_more_path: 'data..more'}", None),
        (
            "{style: page, page_size: 10}",
            "platforms.weibo.pagination: Value error, page_size is read only with style offset or with "
            "total_path (here the url template says the size)",
        ),
        ("{style: offset}", "platforms.weibo.pagination: Value error, style offset needs page_size"),
        (
            "{style: page, total_path: data.total}",
            "platforms.weibo.pagination: Value error, style page needs page_size with total_path",
        ),
    ],
)
def test_pagination_must_fit_its_style_and_the_kind(
    tmp_path: Path, pagination: str, reason: str | None
) -> None:
    refusal = _refusal(tmp_path, PLATFORM + f"    pagination: {pagination}\n")
    if reason is None:
        assert refusal.startswith("platforms.weibo.pagination.has_more_path: Value error, 'data..more'")
    else:
        assert refusal == reason


def test_a_board_reads_no_json_paths_in_its_pagination(tmp_path: Path) -> None:
    text = BOARD.replace("max_pages: 3}", "max_pages: 3, total_path: data.total}")
    assert _refusal(tmp_path, text) == (
        "platforms.tieba: Value error, pagination.total_path: a JSON path, and this kind reads no JSON"
    )


def test_a_paged_platform_needs_page_in_an_entry_point(tmp_path: Path) -> None:
    text = PLATFORM.replace("getIndex?page={page}", "getIndex")
    assert _refusal(tmp_path, text) == (
        "platforms.weibo: Value error, pagination.style: page puts the page where an entry point's url "
        "or body says {page}, and none does"
    )


def test_every_shipped_platform_is_read_by_its_own_kind_model() -> None:
    settings = load_settings(PROJECT_ROOT / "config.yaml", env={})
    kinds = {type(platform).__name__: platform.kind for platform in settings.platforms.values()}
    assert kinds == {
        "JsonFeedPlatform": "json_feed",
        "CommentsPlatform": "comments",
        "HtmlBoardPlatform": "html_board",
        "RssPlatform": "rss",
    }


# --- frozen settings, environment through pydantic-settings ---------------------------------------


def test_loaded_settings_cannot_be_changed_in_place(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, PLATFORM), env={})
    with pytest.raises(ValidationError, match="frozen"):
        settings.dispatch.base_url = "http://elsewhere.invalid"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.platforms["weibo"].enabled = False  # type: ignore[misc]


def test_changed_derives_new_settings_and_leaves_the_loaded_ones_alone(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, PLATFORM), env={})
    derived = settings.changed(dispatch={"timeout_seconds": 2.0}, review={"cookie_secure": False})
    assert (derived.dispatch.timeout_seconds, derived.review.cookie_secure) == (2.0, False)
    assert (settings.dispatch.timeout_seconds, settings.review.cookie_secure) == (10.0, True)
    assert derived.dispatch.base_url == settings.dispatch.base_url


def test_an_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, PLATFORM), env={"WEISU_DATABASE_URL": ""})
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT / 'var/weisu.db'}"


def test_the_process_environment_is_read_when_none_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_MODEL_DIR", "/srv/models")
    monkeypatch.setenv("WEISU_CITY", "{name: 广州}")  # not a documented variable: never read
    settings = load_settings(_write(tmp_path, PLATFORM))
    assert (settings.classify.model_dir, settings.city.name) == ("/srv/models", "深圳")


def test_every_variable_that_sets_a_setting_is_a_documented_override() -> None:
    assert set(ENV_FIELDS) == set(ENV_OVERRIDES) - {"WEISU_CONFIG"}
