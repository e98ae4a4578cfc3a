"""One error hierarchy, one exit-code table.

Every error a user can cause or meet is a `SyncctlError` with a message a person can act on;
the CLI maps it to its exit code in one place and prints one line.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_REFUSED = 4
EXIT_DATABASE = 5
EXIT_LOCKED = 75
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class SyncctlError(Exception):
    """Base of every error syncctl reports to a person."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(SyncctlError):
    """Malformed input from the person at the keyboard: refused before anything changes."""

    exit_code = EXIT_USAGE


class ConfigError(SyncctlError):
    """Missing or unusable configuration (credentials, URI, numeric settings)."""

    exit_code = EXIT_CONFIG


class RemoteError(SyncctlError):
    """Intempus could not be reached, refused a request, or answered something unusable."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class AuthError(RemoteError):
    """Intempus answered 401."""


class NotFoundError(RemoteError):
    """Intempus answered 404 for one object."""


class ValidationError(RemoteError):
    """Intempus refused a write (400) with its own message."""


class RefusedError(SyncctlError):
    """A safety guard stopped the run before it could do harm (e.g. a mass delete)."""

    exit_code = EXIT_REFUSED


class DatabaseError(SyncctlError):
    """The SQLite file cannot be opened, read or written."""

    exit_code = EXIT_DATABASE


class LockedError(SyncctlError):
    """Another syncctl run holds the lock on the same database."""

    exit_code = EXIT_LOCKED


class InterruptedRun(SyncctlError):
    """SIGINT or SIGTERM asked the run to stop; it stopped at a safe point."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


EXIT_ROLE = 77


class RoleError(SyncctlError):
    """The configured credentials lack the role for this write; nothing was sent."""

    exit_code = EXIT_ROLE
