"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import pytest

from dashboard.config import ConfigError, Settings


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url is None
    assert settings.prefix == "bull"
    assert settings.read_only is False
    assert settings.auth_user is None and settings.auth_password is None
    assert settings.poll_seconds == 3.0
    assert settings.embedded_workers is False
    assert settings.demo is False
    assert settings.data_dir == "var/redis"
    assert settings.log_level == "INFO"
    assert len(settings.secret_key) == 64


def test_secret_key_is_random_per_process_unless_set() -> None:
    assert Settings.from_env({}).secret_key != Settings.from_env({}).secret_key
    assert Settings.from_env({"DASHBOARD_SECRET_KEY": "fixed"}).secret_key == "fixed"


def test_values_are_read() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://127.0.0.1:6390/2",
            "DASHBOARD_PREFIX": "myapp",
            "DASHBOARD_READ_ONLY": "1",
            "DASHBOARD_AUTH_USER": "admin",
            "DASHBOARD_AUTH_PASSWORD": "pw",
            "DASHBOARD_POLL_SECONDS": "0.5",
            "DASHBOARD_EMBEDDED_WORKERS": "true",
            "DASHBOARD_DEMO": "yes",
            "DASHBOARD_DATA_DIR": "/tmp/x",
            "DASHBOARD_LOG_LEVEL": "debug",
        }
    )
    assert settings.redis_url == "redis://127.0.0.1:6390/2"
    assert settings.prefix == "myapp"
    assert settings.read_only and settings.embedded_workers and settings.demo
    assert (settings.auth_user, settings.auth_password) == ("admin", "pw")
    assert settings.poll_seconds == 0.5
    assert settings.data_dir == "/tmp/x"
    assert settings.log_level == "DEBUG"


def test_empty_strings_mean_unset() -> None:
    settings = Settings.from_env({"REDIS_URL": "", "DASHBOARD_READ_ONLY": "", "DASHBOARD_POLL_SECONDS": ""})
    assert settings.redis_url is None and settings.read_only is False and settings.poll_seconds == 3.0


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DASHBOARD_READ_ONLY": "maybe"}, "DASHBOARD_READ_ONLY"),
        ({"DASHBOARD_EMBEDDED_WORKERS": "2"}, "DASHBOARD_EMBEDDED_WORKERS"),
        ({"DASHBOARD_DEMO": "sure"}, "DASHBOARD_DEMO"),
        ({"DASHBOARD_POLL_SECONDS": "fast"}, "DASHBOARD_POLL_SECONDS"),
        ({"DASHBOARD_POLL_SECONDS": "0.1"}, "DASHBOARD_POLL_SECONDS"),
        ({"DASHBOARD_LOG_LEVEL": "chatty"}, "DASHBOARD_LOG_LEVEL"),
        ({"DASHBOARD_PREFIX": ""}, "DASHBOARD_PREFIX"),
        ({"DASHBOARD_AUTH_USER": "admin"}, "DASHBOARD_AUTH_PASSWORD"),
        ({"DASHBOARD_AUTH_PASSWORD": "pw"}, "DASHBOARD_AUTH_USER"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.prefix = "other"  # type: ignore[misc]
