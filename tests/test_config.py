from __future__ import annotations

from pathlib import Path

import pytest

from syncctl.connectors.intempus.config import Settings, load_settings
from syncctl.core.errors import ConfigError
from syncctl.core.settings import RetryPolicy, Secret, env_file_warnings

URI = "https://intempus.dk/web/v1"
USER = "syncbot"
KEY = "k3y-s3cr3t-4242"
REMOTE = {"INTEMPUS_API_URI": URI, "INTEMPUS_API_USER": USER, "INTEMPUS_API_KEY": KEY}


@pytest.fixture(autouse=True)
def empty_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so a developer's own .env never leaks into a test."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def write_env(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_load_settings_reads_explicit_environ() -> None:
    settings = load_settings(environ={**REMOTE, "INTEMPUS_API_URI": f"{URI}/"})

    assert settings == Settings(api_uri=URI, api_user=USER, api_key=Secret(KEY))


def test_load_settings_reads_every_tuning_variable() -> None:
    environ = {
        **REMOTE,
        "SYNCCTL_DB": "/var/lib/syncctl/mirror.db",
        "SYNCCTL_PAGE_SIZE": "500",
        "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0",
        "SYNCCTL_MAX_DELETE_FRACTION": "0.05",
        "SYNCCTL_CONNECT_TIMEOUT": "3",
        "SYNCCTL_READ_TIMEOUT": "30.5",
        "SYNCCTL_RETRY_ATTEMPTS": "2",
        "SYNCCTL_RETRY_MAX_SECONDS": "10",
        "SYNCCTL_RETRY_AFTER_CAP": "20",
        "SYNCCTL_RETRY_BACKOFF": "0.5",
    }

    settings = load_settings(environ=environ)

    assert settings == Settings(
        api_uri=URI,
        api_user=USER,
        api_key=Secret(KEY),
        db_path=Path("/var/lib/syncctl/mirror.db"),
        page_size=500,
        max_requests_per_minute=0,
        max_delete_fraction=0.05,
        connect_timeout=3.0,
        read_timeout=30.5,
        retry=RetryPolicy(attempts=2, max_seconds=10.0, backoff_initial=0.5, retry_after_cap=20.0),
    )


def test_load_settings_reads_env_file(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path / "syncctl.env",
        f"INTEMPUS_API_URI={URI}\nINTEMPUS_API_USER={USER}\nINTEMPUS_API_KEY='{KEY}'\nSYNCCTL_PAGE_SIZE=250\n",
    )

    settings = load_settings(env_file, environ={})

    assert settings == Settings(api_uri=URI, api_user=USER, api_key=Secret(KEY), page_size=250)


def test_load_settings_reads_dot_env_in_working_directory(empty_workdir: Path) -> None:
    write_env(
        empty_workdir / ".env", f"INTEMPUS_API_URI={URI}\nINTEMPUS_API_USER={USER}\nINTEMPUS_API_KEY={KEY}\n"
    )

    settings = load_settings(environ={})

    assert settings == Settings(api_uri=URI, api_user=USER, api_key=Secret(KEY))


def test_load_settings_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = write_env(
        tmp_path / "syncctl.env",
        f"INTEMPUS_API_URI={URI}\nINTEMPUS_API_USER=file-user\nINTEMPUS_API_KEY=file-key\nSYNCCTL_DB=file.db\n",
    )

    settings = load_settings(env_file, environ={"INTEMPUS_API_USER": USER, "INTEMPUS_API_KEY": KEY})

    assert settings == Settings(api_uri=URI, api_user=USER, api_key=Secret(KEY), db_path=Path("file.db"))


def test_load_settings_missing_env_file_raises_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.env"

    with pytest.raises(ConfigError) as raised:
        load_settings(missing, environ=REMOTE)

    assert str(raised.value) == f"env file {missing} does not exist"


@pytest.mark.parametrize("name", ["INTEMPUS_API_URI", "INTEMPUS_API_USER", "INTEMPUS_API_KEY"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_load_settings_missing_credential_names_variable(name: str, value: str | None) -> None:
    environ = {key: val for key, val in REMOTE.items() if key != name}
    if value is not None:
        environ[name] = value

    with pytest.raises(ConfigError) as raised:
        load_settings(environ=environ)

    assert str(raised.value) == f"{name} is not set (environment or .env file)"


def test_load_settings_rejects_uri_without_scheme() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={**REMOTE, "INTEMPUS_API_URI": "intempus.dk/web/v1"})

    assert (
        str(raised.value) == "INTEMPUS_API_URI must start with http:// or https://, got 'intempus.dk/web/v1'"
    )


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("SYNCCTL_PAGE_SIZE", "abc", "SYNCCTL_PAGE_SIZE must be a whole number, got 'abc'"),
        ("SYNCCTL_PAGE_SIZE", "2.5", "SYNCCTL_PAGE_SIZE must be a whole number, got '2.5'"),
        ("SYNCCTL_PAGE_SIZE", "0", "SYNCCTL_PAGE_SIZE must be at least 1, got '0'"),
        (
            "SYNCCTL_PAGE_SIZE",
            "20000",
            "SYNCCTL_PAGE_SIZE must be at most 10000 (Intempus' limit), got 20000",
        ),
        ("SYNCCTL_MAX_DELETE_FRACTION", "2", "SYNCCTL_MAX_DELETE_FRACTION must lie between 0 and 1, got 2"),
        ("SYNCCTL_MAX_DELETE_FRACTION", "-0.1", "SYNCCTL_MAX_DELETE_FRACTION must be at least 0, got '-0.1'"),
        ("SYNCCTL_MAX_DELETE_FRACTION", "lots", "SYNCCTL_MAX_DELETE_FRACTION must be a number, got 'lots'"),
        (
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE",
            "-1",
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE must be at least 0, got '-1'",
        ),
        ("SYNCCTL_RETRY_ATTEMPTS", "0", "SYNCCTL_RETRY_ATTEMPTS must be at least 1, got '0'"),
        ("SYNCCTL_READ_TIMEOUT", "0", "SYNCCTL_READ_TIMEOUT must be at least 0.001, got '0'"),
    ],
)
def test_load_settings_bad_number_names_variable(name: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={**REMOTE, name: raw})

    assert str(raised.value) == message


@pytest.mark.parametrize(
    "name",
    [
        "SYNCCTL_MAX_DELETE_FRACTION",
        "SYNCCTL_CONNECT_TIMEOUT",
        "SYNCCTL_READ_TIMEOUT",
        "SYNCCTL_RETRY_MAX_SECONDS",
        "SYNCCTL_RETRY_AFTER_CAP",
        "SYNCCTL_RETRY_BACKOFF",
    ],
)
def test_load_settings_nan_number_names_variable(name: str) -> None:
    # float("nan") parses, and NaN fails every `<`/`>` range check, so it slips through. As the delete
    # fraction it makes the engine's `len(gone) > limit` always false: the mass-delete guard switches off.
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={**REMOTE, name: "nan"})

    assert name in str(raised.value)


def test_load_settings_bad_number_in_env_file_names_variable(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / "syncctl.env", "SYNCCTL_PAGE_SIZE=abc\n")

    with pytest.raises(ConfigError) as raised:
        load_settings(env_file, environ=REMOTE)

    assert str(raised.value) == "SYNCCTL_PAGE_SIZE must be a whole number, got 'abc'"


def test_load_settings_without_remote_needs_no_credentials() -> None:
    settings = load_settings(environ={}, need_remote=False)

    assert settings == Settings(api_uri="", api_user="", api_key=Secret(""))


def test_load_settings_db_defaults_to_syncctl_db() -> None:
    assert load_settings(environ=REMOTE).db_path == Path("syncctl.db")
    assert load_settings(environ={**REMOTE, "SYNCCTL_DB": "  "}).db_path == Path("syncctl.db")


def test_env_file_warnings_warns_for_group_readable_file(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / "syncctl.env", f"INTEMPUS_API_KEY={KEY}\n", mode=0o644)

    assert env_file_warnings(env_file) == (
        f"{env_file} is readable by group or others; it holds the API key (chmod 600 {env_file})",
    )


def test_env_file_warnings_silent_for_owner_only_file(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / "syncctl.env", f"INTEMPUS_API_KEY={KEY}\n", mode=0o600)

    assert env_file_warnings(env_file) == ()


def test_env_file_warnings_silent_without_file(tmp_path: Path) -> None:
    assert env_file_warnings(tmp_path / "nowhere.env") == ()
    assert env_file_warnings(None) == ()


def test_load_settings_carries_env_file_warnings(empty_workdir: Path) -> None:
    write_env(empty_workdir / ".env", f"INTEMPUS_API_KEY={KEY}\n", mode=0o640)

    settings = load_settings(environ={**REMOTE, "INTEMPUS_API_KEY": "other"})

    assert settings.warnings == (
        ".env is readable by group or others; it holds the API key (chmod 600 .env)",
    )


def test_settings_repr_hides_api_key() -> None:
    settings = load_settings(environ=REMOTE)

    assert KEY not in repr(settings)
    assert KEY not in str(settings)
    assert repr(settings.api_key) == "Secret('***')"
    assert settings.api_key == KEY
