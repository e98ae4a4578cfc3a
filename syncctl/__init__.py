"""syncctl: a cron-friendly batch synchronizer between Intempus and one SQLite file."""

__version__ = "0.1.0"
