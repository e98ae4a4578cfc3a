"""`syncctl demo`: the whole flow against the bundled fakes and folders, in a temporary folder."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from rich.console import Console

from syncctl import render
from syncctl.connectors.grid.connector import GridConnector
from syncctl.connectors.grid.fake import FakeGrid, FakeGridServer
from syncctl.connectors.grid.kpi import kpi_report
from syncctl.connectors.intempus.config import Settings
from syncctl.connectors.intempus.connector import CASES, IntempusConnector
from syncctl.connectors.intempus.fake import DEFAULT_KEY, DEFAULT_USER, FakeIntempus, FakeServer
from syncctl.connectors.workorders.demo import demo_round_trip
from syncctl.core import engine
from syncctl.core.db import Database
from syncctl.core.mirror import MirrorTable
from syncctl.core.runs import RunLog
from syncctl.core.settings import Secret
from syncctl.reports.periods import Period


def mirror_matches(table: MirrorTable, fake: FakeIntempus) -> bool:
    """Field-by-field comparison of the whole mirror with the fake's state."""
    if table.count() != len(fake.cases):
        return False
    return all(table.get_row(case_id) == table.to_row(case) for case_id, case in fake.cases.items())


def run_demo(console: Console, *, cases: int = 5000) -> None:
    console.rule("[bold]syncctl demo")
    console.print(f"Starting the bundled fake Intempus with {cases} cases on 127.0.0.1 …")
    fake = FakeIntempus(cases=cases, seed=7)
    with FakeServer(fake) as server, tempfile.TemporaryDirectory(prefix="syncctl-demo-") as folder:
        settings = Settings(
            api_uri=server.url,
            api_user=DEFAULT_USER,
            api_key=Secret(DEFAULT_KEY),
            db_path=Path(folder) / "demo.db",
            max_requests_per_minute=0,
        )
        db = Database.open(settings.db_path)
        connector = IntempusConnector()
        try:

            def step(title: str, options: engine.SyncOptions) -> None:
                console.print()
                console.print(f"[bold]{title}")
                with render.progress_reporter(console) as report:
                    result = engine.run_source(db, connector, settings, options, progress=report)
                console.print(render.sync_table(result))
                if result.error:
                    raise result.error

            step("1. First run: full sync into an empty SQLite file", engine.SyncOptions())

            changed = fake.mutate(update=25, delete=5, create=10, seed=1)
            first = min(fake.cases)
            with sqlite3.connect(settings.db_path) as other:  # any SQLite client may edit the mirror
                other.execute("UPDATE cases SET notes = 'edited locally in sqlite3' WHERE id = ?", (first,))
                other.execute(
                    "INSERT INTO cases (name, number, customer) VALUES ('Demo local case', 'D-1', ?)",
                    (fake.cases[first]["customer"],),
                )
            other.close()
            console.print()
            console.print(
                f"Meanwhile, someone changed Intempus: {len(changed['updated'])} updates, "
                f"{len(changed['created'])} creates, {len(changed['deleted'])} deletes; "
                f"and someone edited the SQLite file: case {first} updated, one case inserted."
            )

            step("2. Incremental sync: push local edits, pull remote changes", engine.SyncOptions())
            step("3. Full sync: also removes the cases deleted in Intempus", engine.SyncOptions(full=True))

            console.print()
            table = MirrorTable.open(db, CASES)
            same = mirror_matches(table, fake)
            verdict = "[green]equal to Intempus, field by field" if same else "[red]DIFFERENT from Intempus"
            console.print(f"The mirror holds {table.count()} cases and is {verdict}.")
            console.print(render.status_table({"database": "demo.db", "runs": RunLog(db, "intempus").runs()}))
            console.print(
                "\nTry it yourself: `syncctl fake-intempus --port 8000 --cases 5000`, then in another shell "
                "set INTEMPUS_API_URI=http://127.0.0.1:8000/web/v1, INTEMPUS_API_USER=demo, "
                "INTEMPUS_API_KEY=demo-key and run `syncctl sync`."
            )
        finally:
            db.close()
        console.print()
        run_grid_demo(console, Path(folder) / "grid.db")
        console.print()
        demo_round_trip(console, Path(folder) / "workorders")


def run_grid_demo(console: Console, db_path: Path) -> None:
    """The grid: a manager account pulls components and measurements, then the KPI report of a week."""
    console.rule("[bold]Grid: components, measurements and KPIs")
    fake = FakeGrid(components=12, measurements_per_component=2000, seed=3)
    with FakeGridServer(fake) as server:
        connector = GridConnector()
        settings = connector.load(
            {"GRID_API_URI": server.url, "GRID_API_USER": "manager", "GRID_API_PASSWORD": "manager",
             "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0"}
        )  # fmt: skip
        db = Database.open(db_path)
        try:
            with render.progress_reporter(console) as report:
                result = engine.run_source(db, connector, settings, engine.SyncOptions(), progress=report)
            console.print(render.sync_table(result))
            if result.error:
                raise result.error
            period = Period.parse("2025-01-01", "2025-01-08")
            kpi = kpi_report(db, period)
            by_type = kpi.tables[0]
            console.print("Components by type: " + ", ".join(f"{t} {n}" for t, n in by_type.rows))
            daily = list(kpi.tables[3].rows)
            console.print(f"Daily averages for the first week: {len(daily)} rows, e.g. {daily[0]}")
            console.print(
                "`syncctl report kpi --start 2025-01-01 --end 2025-01-08 --format html --out kpi.html`"
                " charts them."
            )
        finally:
            db.close()
