"""What a connector declares, and the small interface the sync template drives.

A connector is a package under `syncctl/connectors/` with one `Connector` subclass: its name, settings,
tables (`TableSpec`), and either REST resources (`Resource`: a table, a `Remote` that lists and writes it,
how its cursor works and how local edits are pushed) that the core's sync template runs, or its own
`sync` for a folder-based source built on the same run, lock, history and outbox core.
The core never imports a connector; `syncctl.sources` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from syncctl.core.mirror import Key, MirrorTable, Record, TableSpec
from syncctl.core.settings import Setting

if TYPE_CHECKING:
    from syncctl.core.engine import RunContext


@dataclass
class Page:
    """One page of a listing."""

    records: list[Record]
    total: int | None = None  # how many the whole listing holds, when the remote says so
    committed: Any = None  # the highest version committed when the listing began (first page)
    unstable: bool = False  # the listing may have skipped a record (offset paging saw the set change)


class Remote(Protocol):
    """One remote resource, as the sync template needs it. Writes are needed only for pushing resources."""

    def list_pages(self, since: Any) -> Iterator[Page]:
        """Every record (since=None), or those changed since the cursor; one page at a time."""
        ...

    def find(self, keys: Sequence[Key], *, canary: Key | None = None) -> list[Record]:
        """The records among `keys` the remote still has (a confirmed answer; see IntempusClient)."""
        ...


@runtime_checkable
class WritableRemote(Remote, Protocol):
    def check_write(self) -> None:
        """Raise RoleError (exit 77) when the credentials may not write; before any write is sent."""
        ...

    def create(self, body: dict[str, Any], *, creation_id: str | None) -> Key: ...

    def update(self, key: Key, body: dict[str, Any]) -> None: ...

    def delete(self, key: Key) -> bool: ...

    def body(self, table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        """A local row as a request body: all writable fields (names=None) or just `names`."""
        ...


@runtime_checkable
class DeletedListing(Protocol):
    def list_deleted(self, since: Any) -> Iterator[list[Key]]:
        """Keys deleted remotely since the cursor (for remotes whose deletes are visible incrementally)."""
        ...


@dataclass(frozen=True)
class Resource:
    """A REST resource: a mirrored table and the remote behind it."""

    spec: TableSpec
    remote: Remote
    cursor: str = "none"  # "version" (an integer counter), "timestamp" (an inclusive boundary), "none"
    push: str = "none"  # "none", "two_way" (creates, updates, deletes) or "queued" (updates, in batches)
    push_limit: int | None = None  # queued: at most this many changes per run, oldest first
    deletes_incremental: bool = False  # the remote lists its deletes (DeletedListing)
    delete_batch: int = 100


@dataclass
class SourceConfig:
    """A source's settings as read: raw values, and the typed settings the connector built from them."""

    values: Mapping[str, str]
    settings: Any = None
    warnings: tuple[str, ...] = ()


class Connector:
    """One source. Subclasses set the class attributes and implement `resources` or `sync`."""

    name: ClassVar[str]
    title: ClassVar[str]
    settings: ClassVar[tuple[Setting, ...]]
    tables: ClassVar[tuple[TableSpec, ...]]
    mass_delete_noun: ClassVar[str] = "records"
    secrets_from: ClassVar[tuple[str, ...]] = ()

    def load(self, values: Mapping[str, str]) -> Any:
        """Typed settings from raw values; a ConfigError for anything unusable."""
        return values

    def resources(
        self, config: Any, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> AbstractContextManager[list[Resource]]:
        raise NotImplementedError

    def sync(self, ctx: RunContext) -> None:
        """A run of this source; REST connectors get the core's template (see engine.sync_resources)."""
        from syncctl.core.engine import sync_resources

        with self.resources(ctx.config, ctx.clock, ctx.sleep) as resources:
            sync_resources(ctx, resources)

    def status(self, ctx_db: Any) -> dict[str, Any]:
        """Extra facts for `syncctl status` (queues, rejected files); none by default."""
        return {}


@dataclass
class Registry:
    """The sources in the order CONTRACT.md gives; built outside the core."""

    connectors: list[Connector] = field(default_factory=list)

    def names(self) -> list[str]:
        return [c.name for c in self.connectors]

    def get(self, name: str) -> Connector | None:
        return next((c for c in self.connectors if c.name == name), None)

    def claimed_tables(self) -> frozenset[str]:
        return frozenset(spec.name for c in self.connectors for spec in c.tables)
