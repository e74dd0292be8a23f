"""Nurture's record store: SQLite by default, PostgreSQL in production."""

from nurture.store.store import Store, create_db_engine, utcnow

__all__ = ["Store", "create_db_engine", "utcnow"]
