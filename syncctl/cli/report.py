"""`syncctl report summary|changes|cases`: the reports every source shares. Source reports (`kpi`,
`tasks`) come from their connectors' command modules; all use `syncctl.reports` to render and write."""

from __future__ import annotations

from collections.abc import Callable


def core_reports() -> list[tuple[str, Callable[..., None]]]:
    return []
