"""Settings from BIDROOM_* variables and CLI overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import bidroom.config
from bidroom.config import ENV_VARIABLES, Settings
from bidroom.errors import ValidationError


def _refusal(environ: dict[str, str], **overrides: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Settings.from_env(environ, **overrides)
    assert info.value.code == "invalid_setting"
    return info.value


def test_an_empty_environment_gives_the_documented_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.data_dir == tmp_path / "var"
    assert settings.data_dir.is_absolute()
    assert settings.redis_url is None and settings.uses_embedded_redis
    assert settings.database_url is None
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.workers == 1
    assert settings.public_url is None
    assert settings.redis_appendfsync == "always"
    assert settings.stream_maxlen == 10_000
    assert settings.ws_send_buffer == 1_048_576
    assert settings.ws_coalesce_buffer == 262_144
    assert settings.ws_flood_limit == 50
    assert settings.ws_flood_burst == 100
    assert settings.test_clock is False


def test_every_variable_is_read(tmp_path: Path) -> None:
    environ = {
        "BIDROOM_DATA_DIR": str(tmp_path / "data"),
        "BIDROOM_REDIS_URL": "redis://127.0.0.1:6379/2",
        "BIDROOM_DATABASE_URL": "postgresql+asyncpg://bidroom@db/bidroom",
        "BIDROOM_HOST": "0.0.0.0",
        "BIDROOM_PORT": "8443",
        "BIDROOM_WORKERS": "4",
        "BIDROOM_PUBLIC_URL": "https://bid.example.gov.cn/",
        "BIDROOM_REDIS_APPENDFSYNC": "everysec",
        "BIDROOM_STREAM_MAXLEN": "500",
        "BIDROOM_WS_SEND_BUFFER": "65536",
        "BIDROOM_WS_COALESCE_BUFFER": "0",
        "BIDROOM_WS_FLOOD_LIMIT": "20",
        "BIDROOM_WS_FLOOD_BURST": "40",
        "BIDROOM_TEST_CLOCK": "1",
        "BIDROOM_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
    }
    assert set(environ) == set(ENV_VARIABLES.values())
    settings = Settings.from_env(environ)
    assert settings == Settings(
        data_dir=tmp_path / "data",
        redis_url="redis://127.0.0.1:6379/2",
        database_url="postgresql+asyncpg://bidroom@db/bidroom",
        host="0.0.0.0",
        port=8443,
        workers=4,
        public_url="https://bid.example.gov.cn",
        redis_appendfsync="everysec",
        stream_maxlen=500,
        ws_send_buffer=65_536,
        ws_coalesce_buffer=0,
        ws_flood_limit=20,
        ws_flood_burst=40,
        test_clock=True,
        trusted_proxies=("10.0.0.0/8", "127.0.0.1/32"),
    )


def test_every_setting_has_a_variable_and_a_row_in_the_module_doc() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(ENV_VARIABLES) == fields
    doc = bidroom.config.__doc__ or ""
    for variable in ENV_VARIABLES.values():
        assert f"``{variable}``" in doc


def test_overrides_win_over_the_environment_and_none_overrides_are_ignored() -> None:
    environ = {"BIDROOM_PORT": "9000", "BIDROOM_HOST": "10.0.0.5", "BIDROOM_WORKERS": "3"}
    settings = Settings.from_env(environ, port=9100, host=None, workers="2")
    assert settings.port == 9100
    assert settings.host == "10.0.0.5"
    assert settings.workers == 2


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"BIDROOM_REDIS_URL": "", "BIDROOM_PORT": "  "})
    assert settings.redis_url is None
    assert settings.port == 8000


def test_the_environment_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIDROOM_PORT", "8123")
    assert Settings.from_env().port == 8123


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BIDROOM_PORT", "eighty"),
        ("BIDROOM_PORT", "80.5"),
        ("BIDROOM_PORT", "70000"),
        ("BIDROOM_PORT", "-1"),
        ("BIDROOM_WORKERS", "0"),
        ("BIDROOM_STREAM_MAXLEN", "0"),
        ("BIDROOM_WS_SEND_BUFFER", "lots"),
        ("BIDROOM_WS_SEND_BUFFER", "100"),
        ("BIDROOM_WS_COALESCE_BUFFER", "512"),
        ("BIDROOM_WS_COALESCE_BUFFER", "-1"),
        ("BIDROOM_WS_FLOOD_LIMIT", "0"),
        ("BIDROOM_WS_FLOOD_BURST", "1e3"),
        ("BIDROOM_REDIS_URL", "http://localhost:6379"),
        ("BIDROOM_REDIS_URL", "localhost:6379"),
        ("BIDROOM_DATABASE_URL", "bidroom.db"),
        ("BIDROOM_PUBLIC_URL", "bid.example.gov.cn"),
        ("BIDROOM_PUBLIC_URL", "ftp://bid.example.gov.cn"),
        ("BIDROOM_REDIS_APPENDFSYNC", "sometimes"),
        ("BIDROOM_TEST_CLOCK", "true"),
        ("BIDROOM_TEST_CLOCK", "yes"),
        ("BIDROOM_HOST", "local host"),
        ("BIDROOM_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("BIDROOM_TRUSTED_PROXIES", "proxy.example"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_the_variable(
    variable: str, value: str
) -> None:
    error = _refusal({variable: value})
    assert variable in error.message
    assert repr(value) in error.message
    assert error.details["variable"] == variable


def test_a_bad_override_names_the_setting_and_its_variable() -> None:
    error = _refusal({}, port="http")
    assert "port" in error.message and "BIDROOM_PORT" in error.message
    assert error.details["setting"] == "port"


@pytest.mark.parametrize("value", [True, 8000.0, [8000]])
def test_an_override_of_the_wrong_type_is_refused(value: object) -> None:
    _refusal({}, port=value)


def test_an_unknown_override_is_refused() -> None:
    error = _refusal({}, prot=8000)
    assert "prot" in error.message


def test_the_test_clock_is_on_only_for_1() -> None:
    assert Settings.from_env({"BIDROOM_TEST_CLOCK": "1"}).test_clock is True
    assert Settings.from_env({"BIDROOM_TEST_CLOCK": "0"}).test_clock is False
    assert Settings.from_env({}).test_clock is False


def test_the_database_defaults_to_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"BIDROOM_DATA_DIR": str(tmp_path / "d")})
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/d/bidroom.db"
    assert settings.resolved_database_url().startswith("sqlite+aiosqlite:////")


def test_a_relative_data_dir_is_made_absolute_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"BIDROOM_DATA_DIR": "state"})
    assert settings.data_dir == tmp_path / "state"
    monkeypatch.chdir("/")
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/state/bidroom.db"


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:////srv/b.db", "sqlite+aiosqlite:////srv/b.db"),
        ("sqlite+aiosqlite:////srv/b.db", "sqlite+aiosqlite:////srv/b.db"),
    ],
)
def test_a_configured_database_url_gets_an_async_driver(given: str, resolved: str) -> None:
    assert Settings.from_env({"BIDROOM_DATABASE_URL": given}).resolved_database_url() == resolved


def test_settings_are_immutable_and_replace_checks_values() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]
    assert settings.replace(port=9001).port == 9001
    assert settings.replace(redis_url=None).redis_url is None
    with pytest.raises(ValidationError):
        settings.replace(workers=0)
