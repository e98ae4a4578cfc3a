"""Sierra's settings: required ones, the original service's names, switches and the INVDA number."""

from __future__ import annotations

import pytest

from syncctl.connectors.sierra.config import SETTINGS, settings_from
from syncctl.core.errors import ConfigError
from syncctl.core.settings import missing_settings

REQUIRED = {
    "SIERRA_API_ENDPOINT": "https://catalog.example.org/iii/sierra-api/v6/",
    "SIERRA_API_CLIENT_KEY": "key",
    "SIERRA_API_CLIENT_SECRET": "secret",
}


def test_settings_defaults() -> None:
    settings = settings_from(REQUIRED)

    assert settings.endpoint == "https://catalog.example.org/iii/sierra-api/v6"
    assert (settings.batch_limit, settings.set_invda, settings.set_iuse3, settings.invda_field) == (
        100,
        False,
        False,
        None,
    )
    assert (settings.read_timeout, settings.retry.attempts, settings.page_size) == (60.0, 5, 1000)
    assert "secret" not in repr(settings)


def test_settings_of_the_original_service_win_over_the_shared_ones() -> None:
    settings = settings_from(
        {
            **REQUIRED,
            "SIERRA_API_CLIENT_TIMEOUT_SECONDS": "5",
            "SIERRA_API_CLIENT_RETRIES": "0",
            "SYNCCTL_READ_TIMEOUT": "90",
            "SYNCCTL_RETRY_ATTEMPTS": "9",
            "SIERRA_UPDATE_BATCH_SIZE_LIMIT": "25",
            "SIERRA_UPDATE_SET_INVDA": "True",
            "SIERRA_UPDATE_SET_IUSE3": "1",
            "SIERRA_INVDA_FIXED_FIELD": "0265",
            "SYNCCTL_PAGE_SIZE": "2000",
        }
    )

    assert (settings.read_timeout, settings.connect_timeout, settings.retry.attempts) == (5.0, 5.0, 1)
    assert (settings.batch_limit, settings.set_invda, settings.set_iuse3) == (25, True, True)
    assert (settings.invda_field, settings.page_size) == ("265", 2000)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SIERRA_API_ENDPOINT", "catalog.example.org", "must start with http"),
        ("SIERRA_API_CLIENT_SECRET", " ", "SIERRA_API_CLIENT_SECRET is not set"),
        ("SIERRA_UPDATE_BATCH_SIZE_LIMIT", "0", "at least 1"),
        ("SIERRA_UPDATE_BATCH_SIZE_LIMIT", "ten", "whole number"),
        ("SIERRA_UPDATE_SET_INVDA", "maybe", "true or false"),
        ("SIERRA_INVDA_FIXED_FIELD", "INVDA", "fixed-field number"),
        ("SIERRA_API_CLIENT_RETRIES", "-1", "at least 0"),
        ("SIERRA_API_CLIENT_TIMEOUT_SECONDS", "0", "at least"),
        ("SYNCCTL_PAGE_SIZE", "2001", "at most 2000"),
    ],
)
def test_settings_refuse_unusable_values_naming_them(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from({**REQUIRED, name: value})


def test_sierra_is_configured_by_its_three_required_settings() -> None:
    assert missing_settings(SETTINGS, {}) == list(REQUIRED)
    assert missing_settings(SETTINGS, REQUIRED) == []
    secret = {s.name for s in SETTINGS if s.secret}
    assert "SIERRA_API_CLIENT_SECRET" in secret and "SIERRA_API_CLIENT_KEY" not in secret
