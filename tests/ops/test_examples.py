"""The operations examples do what they say: every syncctl command in them is a valid invocation, the
systemd units pass `systemd-analyze verify` and rate under 3 in `systemd-analyze security`, the crontab
mails errors only and logs with dates, and the Kubernetes manifests carry the fields that matter.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperGroup

from syncctl.cli import app
from syncctl.ops.durations import parse_duration
from syncctl.sources import registry

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "contrib" / "systemd"
KUBERNETES = ROOT / "contrib" / "kubernetes"
CRONTAB = ROOT / "crontab.example"
LOGROTATE = ROOT / "contrib" / "logrotate" / "syncctl"
BINARY = "/opt/syncctl/bin/syncctl"
SERVICES = sorted(SYSTEMD.glob("*.service"))
TIMERS = sorted(SYSTEMD.glob("*.timer"))
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
LOGROTATE_BIN = shutil.which("logrotate")
MAX_EXPOSURE = 3.0


# -- is `syncctl ARGS` a valid invocation? -------------------------------------------------------------


@functools.cache
def command_tree() -> Any:
    return typer.main.get_command(app)


@functools.cache
def source_names() -> frozenset[str]:
    return frozenset(registry().names())


class Invalid(Exception):
    """An example's command that syncctl would refuse."""


def check_invocation(argv: list[str]) -> str:
    """Resolve `syncctl ARGV` against the command tree as click does, running nothing: every option must
    exist, every value convert, every DURATION parse and every source exist. Returns the command's path.

    Typer brings its own copy of click (`typer.core.TyperGroup` is no `click.Group`), hence no click here.
    """
    command = command_tree()
    try:
        ctx = command.make_context("syncctl", list(argv))
        while isinstance(command, TyperGroup):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                raise Invalid("no command given")
            name, found, rest = command.resolve_command(ctx, rest)
            assert name is not None and found is not None
            ctx = found.make_context(name, rest, parent=ctx)
            command = found
        for param in command.params:
            value = ctx.params.get(param.name or "")
            if value is not None and getattr(param, "metavar", None) == "DURATION":
                parse_duration(str(value), option=param.opts[0])
    except Invalid:
        raise
    except Exception as exc:  # click's own errors (by way of typer's copy) and syncctl's UsageError
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        raise Invalid(message) from None
    unknown = set(ctx.params.get("sources") or []) - source_names()
    if unknown:
        raise Invalid(f"unknown source(s) {sorted(unknown)}")
    return str(ctx.command_path)


def assert_valid(argv: list[str], where: str) -> str:
    try:
        return check_invocation(argv)
    except Invalid as exc:
        pytest.fail(f"{where}: `syncctl {shlex.join(argv)}` is not valid: {exc}")


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--wait-lok", "5m"],
        ["sync", "--wait-lock", "5 minutes"],
        ["sync", "--every", "5m", "--max-runs", "many"],
        ["-q", "helth"],
        ["--log-format"],
        ["sync", "nosuchsource"],
        ["health", "--max-age", "soon"],
        [],
    ],
)
def test_examples_checker_refuses_a_wrong_invocation(argv: list[str]) -> None:
    with pytest.raises(Invalid):
        check_invocation(argv)


def test_examples_checker_accepts_the_commands_of_the_readme() -> None:
    assert check_invocation(["-q", "--log-file", "x.log", "sync", "--full", "--wait-lock", "15m"]) == (
        "syncctl sync"
    )
    assert check_invocation(["health", "intempus", "--nagios", "--max-age", "1h30m"]) == "syncctl health"
    assert check_invocation(["--log-format", "json", "sync", "--every", "5m", "--max-runs", "3"])


# -- where the commands are ----------------------------------------------------------------------------


def unit_sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}: keys may repeat (SystemCallFilter=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for k, v in unit_sections(path).get(section, []) if k == key]


def unit_commands(path: Path) -> Iterator[list[str]]:
    for key, value in unit_sections(path).get("Service", []):
        if key.startswith("Exec"):
            words = shlex.split(value.lstrip("-@:+!"))
            assert words[0] == BINARY, f"{path.name}: {key} runs {words[0]}, not {BINARY}"
            yield words[1:]


CRON_SCHEDULE = re.compile(r"^((?:\S+\s+){5})(.*)$")
CRON_FIELD = re.compile(r"^[\d*/,-]+$")
SYNCCTL_CALL = re.compile(r"(?:^|[\s(;&|])(?:\S*/bin/syncctl|syncctl)(?=\s|$)((?:\s+[^\s;&|()<>]+)*)")
REDIRECTION = re.compile(r"\s\d*>>?&?\S*")


def cron_jobs() -> list[tuple[str, str]]:
    """(schedule, command) of every job line of crontab.example."""
    jobs = []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#") or re.match(r"^\w+=", line):
            continue
        found = CRON_SCHEDULE.match(line)
        assert found, f"crontab.example: not a job line: {line!r}"
        jobs.append((found.group(1).strip(), found.group(2)))
    return jobs


def shell_calls(command: str) -> list[list[str]]:
    """The arguments of every syncctl call in a shell command line, redirections left out."""
    return [shlex.split(m.group(1)) for m in SYNCCTL_CALL.finditer(REDIRECTION.sub(" ", command))]


@functools.cache
def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container_commands(container: dict[str, Any]) -> Iterator[list[str]]:
    command = [*container.get("command", []), *container.get("args", [])]
    if command:
        yield command
    probe = container.get("livenessProbe", {}).get("exec", {}).get("command")
    if probe:
        yield probe


def readme_yaml_commands() -> Iterator[list[str]]:
    text = (KUBERNETES / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        for container in yaml.safe_load(block).get("containers", []):
            yield from container_commands(container)


def every_example_command() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for unit in SERVICES:
        found += [(unit.name, argv) for argv in unit_commands(unit)]
    for schedule, line in cron_jobs():
        found += [(f"crontab.example ({schedule})", argv) for argv in shell_calls(line)]
    for cronjob in of_kind("CronJob"):
        name = cronjob["metadata"]["name"]
        for container in pod_spec(cronjob)["containers"] + pod_spec(cronjob).get("initContainers", []):
            for command in container_commands(container):
                assert command[0] == "syncctl", f"{name} runs {command[0]}"
                found.append((f"kubernetes {name}", command[1:]))
    for command in readme_yaml_commands():
        assert command[0] == "syncctl", f"contrib/kubernetes/README.md runs {command[0]}"
        found.append(("kubernetes README.md", command[1:]))
    return found


def test_examples_every_syncctl_command_is_a_valid_invocation() -> None:
    commands = every_example_command()
    reached = {(where, assert_valid(argv, where)) for where, argv in commands}
    # Each kind of example has its sync, full sync and health check; none was silently skipped.
    assert {path for _, path in reached} == {"syncctl sync", "syncctl health"}
    assert sum(1 for where, _ in commands if where.endswith(".service")) == len(SERVICES)
    assert sum(1 for where, _ in commands if where.startswith("crontab")) == 3
    assert sum(1 for where, _ in commands if where.startswith("kubernetes syncctl-")) == len(
        of_kind("CronJob")
    )
    assert sum(1 for where, _ in commands if where == "kubernetes README.md") == 2
    fulls = {where for where, argv in commands if "--full" in argv}
    assert fulls == {
        "syncctl-full.service",
        "syncctl-full@.service",
        "crontab.example (17 3 * * *)",
        "kubernetes syncctl-acme-full",
    }
    for where, argv in commands:
        if "--full" in argv:
            assert "--wait-lock" in argv, f"{where}: a full sync must wait for a run under way"


# -- systemd -------------------------------------------------------------------------------------------


def test_examples_systemd_every_timer_has_a_calendar_and_catches_up_and_every_service_a_timer() -> None:
    assert {t.stem for t in TIMERS} == {s.stem for s in SERVICES}
    assert {s.name for s in SERVICES} >= {"syncctl.service", "syncctl-full.service", "syncctl@.service"}
    for timer in TIMERS:
        assert unit_values(timer, "Timer", "OnCalendar"), f"{timer.name}: Persistent= needs OnCalendar="
        assert unit_values(timer, "Timer", "Persistent") == ["true"], timer.name
        assert unit_values(timer, "Timer", "RandomizedDelaySec"), timer.name
        assert unit_values(timer, "Install", "WantedBy") == ["timers.target"], timer.name
        assert not unit_values(timer, "Timer", "OnUnitActiveSec"), f"{timer.name}: OnCalendar= only"
    assert unit_values(SYSTEMD / "syncctl-full.timer", "Timer", "OnCalendar") == ["*-*-* 03:00:00"]


def sandbox(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [line for line in text[text.index("# Sandbox:") :].splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("unit", SERVICES, ids=[s.name for s in SERVICES])
def test_examples_systemd_service_runs_sandboxed_as_syncctl_with_only_its_folder_writable(unit: Path) -> None:
    service = dict(unit_sections(unit)["Service"])
    assert (service["User"], service["Group"], service["Type"]) == ("syncctl", "syncctl", "oneshot")
    assert service["ProtectSystem"] == "strict" and service["NoNewPrivileges"] == "yes"
    assert sandbox(unit) == sandbox(SYSTEMD / "syncctl.service")
    assert not unit_values(unit, "Service", "ReadWritePaths"), "only the state folder is writable"
    template = "@." in unit.name
    tenant = "/%i" if template else ""
    assert service["StateDirectory"] == f"syncctl{tenant}"
    assert service["WorkingDirectory"] == f"/var/lib/syncctl{tenant}"
    assert service["Environment"] == f"SYNCCTL_DB=/var/lib/syncctl{tenant}/syncctl.db"
    assert service["EnvironmentFile"] == ("/etc/syncctl/%i.env" if template else "/etc/syncctl/syncctl.env")
    [argv] = unit_commands(unit)
    assert argv[0] == "-q", "only errors reach the journal"
    if unit.stem.rstrip("@") == "syncctl":
        assert "--full" not in argv and service["SuccessExitStatus"] == "75"
    if "health" in unit.name:
        assert argv[1] == "health"


@pytest.fixture(scope="module")
def unit_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with ExecStart= pointing at an executable stub: `verify` checks that the binary exists."""
    folder = tmp_path_factory.mktemp("units")
    stub = folder / "bin" / "syncctl"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    for unit in [*SERVICES, *TIMERS]:
        (folder / unit.name).write_text(unit.read_text(encoding="utf-8").replace(BINARY, str(stub)))
    return folder


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
    )


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here")
def test_examples_systemd_units_pass_systemd_analyze_verify(unit_copies: Path) -> None:
    names = sorted(p.name for p in unit_copies.iterdir() if p.is_file())
    result = analyze("verify", *(str(unit_copies / name) for name in names), cwd=unit_copies)
    ours = [line for line in result.stderr.splitlines() if str(unit_copies) in line or "syncctl" in line]
    assert (result.returncode, ours) == (0, []), result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("name", [s.name for s in SERVICES])
def test_examples_systemd_service_exposure_is_under_3(unit_copies: Path, name: str) -> None:
    result = analyze("security", "--offline=true", str(unit_copies / name), cwd=unit_copies)
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline (systemd 250 or later): {result.stderr.strip()}")
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) < MAX_EXPOSURE, result.stdout


# -- cron and logrotate --------------------------------------------------------------------------------


def test_examples_crontab_mails_errors_logs_with_dates_and_never_writes_to_var_log() -> None:
    text = CRONTAB.read_text(encoding="utf-8")
    assert re.search(r"^MAILTO=\S+@", text, flags=re.M)
    jobs = cron_jobs()
    for schedule, command in jobs:
        assert all(CRON_FIELD.match(f) for f in schedule.split()), schedule
        assert "%" not in command, "cron turns % into a newline"
        assert not re.search(r">>|>\s*/|/dev/null", command), f"output must reach the mail: {command}"
        assert "/var/log" not in command, "a user's crontab cannot write /var/log"
        for argv in shell_calls(command):
            assert argv[0] == "-q", "-q: a mail only when something failed"
            if "sync" in argv:
                log_file = argv[argv.index("--log-file") + 1]
                assert fnmatch.fnmatch(log_file, logrotate_paths()[0])


def logrotate_paths() -> list[str]:
    return re.findall(r"^(/\S+)\s*\{", LOGROTATE.read_text(encoding="utf-8"), flags=re.M)


@pytest.mark.parametrize(("code", "mailed"), [(0, False), (75, False), (1, True), (4, True)])
def test_examples_crontab_incremental_job_mails_every_failure_but_a_held_lock(
    tmp_path: Path, code: int, mailed: bool
) -> None:
    [command] = [c for s, c in cron_jobs() if s == "*/5 * * * *"]
    stub = tmp_path / ".venv" / "bin" / "syncctl"
    stub.parent.mkdir(parents=True)
    stub.write_text(f'#!/bin/sh\necho "syncctl: error: exit {code}" >&2\nexit {code}\n', encoding="utf-8")
    stub.chmod(0o755)

    result = subprocess.run(
        ["/bin/sh", "-c", command.replace("/srv/syncctl", str(tmp_path))],
        capture_output=True,
        text=True,
        timeout=30,
    )

    mail = result.stdout + result.stderr  # cron mails both
    assert mail == (f"syncctl: error: exit {code}\n" if mailed else "")


def test_examples_logrotate_rotates_the_crontab_log_without_copytruncate() -> None:
    text = LOGROTATE.read_text(encoding="utf-8")
    assert logrotate_paths() == ["/srv/syncctl/log/syncctl.log"]
    assert text.count("{") == text.count("}") == 1
    assert "copytruncate" not in text.split("{")[1]  # syncctl reopens the file by name
    assert "/srv/syncctl/logrotate.conf" in CRONTAB.read_text(encoding="utf-8")


@pytest.mark.skipif(LOGROTATE_BIN is None, reason="logrotate is not installed here")
def test_examples_logrotate_config_is_accepted_by_logrotate(tmp_path: Path) -> None:
    assert LOGROTATE_BIN is not None
    log = tmp_path / "syncctl.log"
    log.write_text("2026-01-01T00:00:00+00:00 syncctl: ERROR: x\n", encoding="utf-8")
    config = tmp_path / "logrotate.conf"
    config.write_text(LOGROTATE.read_text(encoding="utf-8").replace(logrotate_paths()[0], str(log)))
    result = subprocess.run(
        [LOGROTATE_BIN, "--debug", "--state", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr


# -- Kubernetes ----------------------------------------------------------------------------------------


def test_examples_kubernetes_has_a_secret_a_claim_and_three_cronjobs_per_tenant() -> None:
    assert sorted(doc["kind"] for doc in manifests()) == [
        "CronJob",
        "CronJob",
        "CronJob",
        "PersistentVolumeClaim",
        "Secret",
    ]
    [secret] = of_kind("Secret")
    intempus = registry().get("intempus")
    assert intempus is not None
    required = {s.name for s in intempus.settings if s.required}
    assert required <= set(secret["stringData"]), "the Secret configures the intempus source"
    assert "SYNCCTL_DB" not in secret["stringData"], "the file's place belongs to the CronJob"
    [claim] = of_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("name", ["syncctl-acme-sync", "syncctl-acme-full", "syncctl-acme-health"])
def test_examples_kubernetes_cronjob_is_forbid_nonroot_readonly_with_secret_and_claim(name: str) -> None:
    [cronjob] = [c for c in of_kind("CronJob") if c["metadata"]["name"] == name]
    [secret] = of_kind("Secret")
    [claim] = of_kind("PersistentVolumeClaim")
    spec = cronjob["spec"]
    assert cronjob["apiVersion"] == "batch/v1"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5 and all(CRON_FIELD.match(f) for f in spec["schedule"].split())
    pod = pod_spec(cronjob)
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    database = Path(env["SYNCCTL_DB"])
    assert mounts[str(database.parent)]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "emptyDir" in mounts["/tmp"], "SQLite's temporary files need a writable /tmp"
    command = container["command"]
    assert command[0] == "syncctl"
    assert_valid(command[1:], name)
    if "sync" in command:
        [rule] = spec["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
        assert rule["action"] == "Ignore" and rule["onExitCodes"]["values"] == [75]
        assert "--wait-lock" in command
    else:
        assert command[1] == "health"
