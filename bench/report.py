"""Turn the measured runs into `bench/RESULTS.md`: one table per N, the targets met or missed, the method."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LARGE = 1_000_000

CASES = {
    "serve": "fake: serve one full listing (download only, no parsing)",
    "floor": "floor: download every page + `json.loads`",
    "1": "1. initial full sync into an empty file",
    "2": "2. full sync again, nothing changed",
    "3": "3. incremental sync after 0.1% of cases updated remotely",
    "4": "4. full sync after 1% updated, 1% deleted, 1% created remotely",
    "5": "5. push of 1,000 local edits (UPDATE via sqlite3), then `syncctl sync`",
}
TOOLS = ("fake", "floor", "syncctl", "dlt")


@dataclass
class Run:
    n: int
    case: str
    tool: str
    rep: int
    changes: int = 0
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    maxrss_mb: float = 0.0
    fake_cpu_s: float = 0.0
    ok: bool | None = None  # None: nothing to check (the floor, the fake)
    check: str = ""
    error: str | None = None  # exit code or timeout, with the end of stderr
    output: dict[str, Any] | None = None

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


@dataclass
class SizeInfo:
    n: int
    repeat: int
    date: str
    fake_startup_s: float = 0.0
    fake_rss_mb: float = 0.0
    fake_render_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Group:
    runs: list[Run]

    def median(self, pick: Callable[[Run], float]) -> float:
        good = [pick(r) for r in self.runs if r.error is None] or [pick(r) for r in self.runs]
        return statistics.median(good)

    @property
    def wall(self) -> float:
        return self.median(lambda r: r.wall_s)

    @property
    def cpu(self) -> float:
        return self.median(lambda r: r.cpu_s)

    @property
    def rss(self) -> float:
        return max(r.maxrss_mb for r in self.runs)

    @property
    def failed(self) -> bool:
        return any(r.error is not None for r in self.runs)

    @property
    def correct(self) -> bool | None:
        checked = [r.ok for r in self.runs if r.ok is not None]
        return all(checked) if checked else None


def group(runs: Iterable[Run], n: int, case: str, tool: str) -> Group | None:
    found = [r for r in runs if r.n == n and r.case == case and r.tool == tool]
    return Group(found) if found else None


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def _correct_cell(g: Group) -> str:
    errors = [r for r in g.runs if r.error is not None]
    if errors:
        return f"**run failed** ({errors[0].error})"
    verdict = g.correct
    if verdict is None:
        return "n/a"
    checked = [r for r in g.runs if r.ok is not None]
    if verdict:
        return f"yes ({len(checked)}/{len(checked)})"
    bad = [r for r in checked if not r.ok]
    return f"**NO** ({len(bad)}/{len(checked)} runs): {bad[0].check}"


def size_table(runs: Sequence[Run], info: SizeInfo) -> list[str]:
    n = info.n
    lines = [
        f"## N = {n:,} cases",
        "",
        f"Run {info.date}; {info.repeat} run(s) per row unless the runs column says otherwise; medians.",
        f"The fake started with {n:,} cases in {info.fake_startup_s:.1f} s (generating them), rendered "
        f"every case's JSON in {info.fake_render_s:.1f} s (`POST /_fake/render`, before any timed run and "
        f"again after each mutation), and then held {info.fake_rss_mb:,.0f} MB.",
        "",
        "| case | tool | runs | wall s | cases/s | CPU s (user+sys) | peak RSS MB | fake CPU s | correct |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for case, label in CASES.items():
        for tool in TOOLS:
            g = group(runs, n, case, tool)
            if g is None:
                continue
            cases_per_s = ""
            if case in ("serve", "floor", "1", "2", "4"):
                cases_per_s = f"{n / g.wall:,.0f}" if g.wall > 0 else ""  # a full listing: about N cases
            lines.append(
                f"| {label} | {tool} | {len(g.runs)} | {_num(g.wall)} | {cases_per_s} | {_num(g.cpu)} "
                f"| {_num(g.rss, 0)} | {_num(g.median(lambda r: r.fake_cpu_s))} | {_correct_cell(g)} |"
            )
        if case == "5" and group(runs, n, "5", "syncctl") is not None:
            lines.append(f"| {label} | dlt | - | n/a | | | | | n/a: dlt has no push |")
    for note in info.notes:
        lines += ["", note]
    return [*lines, ""]


@dataclass
class Target:
    name: str
    n: int | None
    measured: str
    goal: str
    met: bool | None  # None: could not be judged (a tool missing)
    margin: str


def _ratio_target(
    name: str, n: int, value: float, goal: float, *, at_least: bool, unit: str, measured: str
) -> Target:
    met = value >= goal if at_least else value <= goal
    if at_least:
        margin = f"{value / goal:.2f}x the goal" if goal else ""
    else:
        margin = f"{(goal - value) / goal:+.0%} headroom" if met else f"{(value - goal) / goal:.0%} over"
    return Target(name, n, measured, f"{'≥' if at_least else '≤'} {goal:g}{unit}", met, margin)


def targets(runs: Sequence[Run], sizes: Sequence[int]) -> list[Target]:
    found: list[Target] = []
    for n in sizes:
        s1, d1 = group(runs, n, "1", "syncctl"), group(runs, n, "1", "dlt")
        floor = group(runs, n, "floor", "floor")
        if s1 is not None and d1 is not None and not d1.failed:
            ratio = d1.wall / s1.wall
            found.append(
                _ratio_target(
                    "case 1 throughput vs dlt",
                    n,
                    ratio,
                    3.0,
                    at_least=True,
                    unit="x",
                    measured=f"{n / s1.wall:,.0f} vs {n / d1.wall:,.0f} cases/s = {ratio:.1f}x",
                )
            )
        elif s1 is not None:
            why = "dlt not measured" if d1 is None else f"dlt failed: {d1.runs[0].error}"
            found.append(Target("case 1 throughput vs dlt", n, why, "≥ 3x", None, ""))
        if s1 is not None and floor is not None:
            ratio = s1.cpu / floor.cpu
            found.append(
                _ratio_target(
                    "case 1 CPU vs the floor's CPU",
                    n,
                    ratio,
                    2.0,
                    at_least=False,
                    unit="x",
                    measured=f"{s1.cpu:.1f} s vs {floor.cpu:.1f} s = {ratio:.2f}x",
                )
            )
        if s1 is not None:
            found.append(
                _ratio_target(
                    "case 1 peak RSS", n, s1.rss, 150, at_least=False, unit=" MB", measured=f"{s1.rss:.0f} MB"
                )
            )
        s2 = group(runs, n, "2", "syncctl")
        if s1 is not None and s2 is not None:
            found.append(
                Target(
                    "case 2 faster than case 1",
                    n,
                    f"{s2.wall:.2f} s vs {s1.wall:.2f} s",
                    "case 2 < case 1",
                    s2.wall < s1.wall,
                    f"{s2.wall / s1.wall:.0%} of case 1",
                )
            )
        s3 = group(runs, n, "3", "syncctl")
        if s3 is not None and s1 is not None:
            changes = s3.runs[0].changes
            share = s3.wall / s1.wall
            # The goal is set at N = 1M; smaller N are held to the same 2 s.
            found.append(
                _ratio_target(
                    "case 3 (incremental) time",
                    n,
                    s3.wall,
                    2.0,
                    at_least=False,
                    unit=" s",
                    measured=f"{s3.wall:.2f} s for {changes:,} changes ({share:.1%} of case 1's time)",
                )
            )
    small = [n for n in sizes if n < LARGE]
    large = [n for n in sizes if n >= LARGE]
    if small and large:
        a, b = group(runs, max(small), "1", "syncctl"), group(runs, min(large), "1", "syncctl")
        if a is not None and b is not None:
            growth = b.rss / a.rss
            found.append(
                Target(
                    "case 1 peak RSS nearly flat",
                    None,
                    f"{a.rss:.0f} MB at {max(small):,} → {b.rss:.0f} MB at {min(large):,}",
                    "≤ 1.25x",
                    growth <= 1.25,
                    f"{growth:.2f}x",
                )
            )
    for tool in ("syncctl", "dlt"):
        verdicts = [(n, case) for n in sizes for case in ("1", "2", "3", "4", "5")]
        checked = [(n, c, g) for n, c in verdicts if (g := group(runs, n, c, tool)) is not None]
        if not checked:
            continue
        bad = [f"case {c} at {n:,}" for n, c, g in checked if g.correct is False or g.failed]
        found.append(
            Target(
                f"{tool}: mirror equals remote after every run",
                None,
                f"{sum(len(g.runs) for _, _, g in checked)} runs checked",
                "all equal",
                not bad,
                "wrong after: " + ", ".join(bad) if bad else "all equal",
            )
        )
    return found


def target_table(found: Sequence[Target]) -> list[str]:
    lines = ["| target | N | measured (syncctl) | goal | met? | by how much |", "|---|---:|---|---|---|---|"]
    for t in found:
        met = "n/a" if t.met is None else ("met" if t.met else "**missed**")
        n = f"{t.n:,}" if t.n is not None else "all"
        lines.append(f"| {t.name} | {n} | {t.measured} | {t.goal} | {met} | {t.margin} |")
    return lines


def render(
    runs: Sequence[Run], infos: Sequence[SizeInfo], meta: dict[str, Any], method: Sequence[str]
) -> str:
    sizes = [info.n for info in infos]
    lines = [
        "# syncctl benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. How to read and rerun: "
        "`bench/README.md`.",
        "",
        f"- date: {meta['date']}",
        f"- machine: {meta['cores']} cores ({meta['cpu']}), {meta['memory']}, {meta['os']}",
        f"- software: {meta['software']}",
        f"- page size: {meta['page_size']} cases per request for every tool; "
        "syncctl with `SYNCCTL_MAX_REQUESTS_PER_MINUTE=0`",
        f"- runs per case: {meta['repeats']}",
        "",
        "## Targets",
        "",
        *target_table(targets(runs, sizes)),
        "",
    ]
    for info in infos:
        lines += size_table(runs, info)
    lines += ["## Notes", "", *notes(runs), ""]
    lines += ["## Method", "", *method, ""]
    lines += ["## Every run", "", "<details><summary>all measured runs</summary>", ""]
    lines += ["| N | case | tool | run | changes | wall s | CPU s | RSS MB | fake CPU s | reported | check |"]
    lines += ["|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in runs:
        check = r.error or r.check
        lines.append(
            f"| {r.n:,} | {r.case} | {r.tool} | {r.rep} | {r.changes:,} | {r.wall_s:.2f} | {r.cpu_s:.2f} "
            f"| {r.maxrss_mb:.0f} | {r.fake_cpu_s:.2f} | {reported(r)} | {check} |"
        )
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def notes(runs: Sequence[Run]) -> list[str]:
    """What a reader should know to read the tables right; partly computed from the runs."""
    found = []
    timed = [r for r in runs if r.tool in ("syncctl", "dlt", "floor") and r.error is None and r.wall_s > 0]
    if timed:
        busiest = max(timed, key=lambda r: r.fake_cpu_s / r.wall_s)
        share = busiest.fake_cpu_s / busiest.wall_s
        verdict = "it was never the bottleneck" if share < 0.5 else "it may have limited that run"
        found.append(
            f"- The fake used at most {share:.0%} of one core during any timed run ({busiest.tool}, case "
            f"{busiest.case}, N = {busiest.n:,}): {verdict}. Its own time to serve a full listing is the "
            "*fake: serve* row."
        )
    if any(r.tool == "dlt" for r in runs):
        found += [
            "- dlt's `merge` never deletes rows that are gone remotely, so its mirror keeps every case "
            "deleted in Intempus: case 4 is reported as a correctness failure of dlt, as it is one for a "
            "mirror. "
            "(dlt's `replace` disposition would drop them, by reloading everything.)",
            "- dlt has no push of local edits: case 5 is syncctl only.",
            "- dlt leaves out columns that were null in every row it loaded (here `creation_id`, `parent`, "
            "`parent_name`, `priority`, `root_parent`, `uuid`), and adds `_dlt_load_id`/`_dlt_id`; only ids "
            "and `logical_timestamp` of its table are compared.",
        ]
    return found


def reported(run: Run) -> str:
    """What the tool itself printed about the run, in short."""
    out = run.output or {}
    if run.tool == "syncctl" and "fetched" in out:
        return (
            f"fetched {out['fetched']:,}: +{out['inserted']:,} ~{out['updated']:,} -{out['deleted']:,} "
            f"={out['unchanged']:,}, pushed {out['pushed']:,}"
        )
    if run.tool == "dlt" and "rows" in out:
        return f"{out['rows']:,} rows loaded"
    if "pages" in out:
        return f"{out['pages']:,} pages, {out['cases']:,} cases, {out['bytes'] / 1e6:,.0f} MB"
    return ""


def to_json(runs: Sequence[Run], infos: Sequence[SizeInfo], meta: dict[str, Any]) -> dict[str, Any]:
    return {"meta": meta, "sizes": [asdict(i) for i in infos], "runs": [asdict(r) for r in runs]}


def from_json(data: dict[str, Any]) -> tuple[list[Run], list[SizeInfo]]:
    return [Run(**r) for r in data["runs"]], [SizeInfo(**i) for i in data["sizes"]]
