"""Apply ordered plain-SQL migrations under an advisory lock, one checksum per file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.db.bootstrap import SEARCH_MATCH_FUNCTION, search_is_indexable
from shared.logging import get_logger

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "migrations"
# Arbitrary but fixed: every migrator in the fleet contends for the same lock.
_LOCK_KEY = 7_461_532_019

log = get_logger(__name__)


class MigrationError(Exception):
    """A migration cannot be applied safely."""


@dataclass(frozen=True)
class Migration:
    """One `.sql` file and its checksum."""

    name: str
    sql: str
    checksum: str


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every `NNNN_name.sql` file, in order."""
    files = sorted(directory.glob("*.sql"))
    migrations = []
    for path in files:
        sql = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(sql.encode()).hexdigest()
        migrations.append(Migration(name=path.name, sql=sql, checksum=digest))
    return migrations


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            applied = await _apply_pending(conn, load_migrations(directory))
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        if not await search_is_indexable(conn):
            # Production usually migrates without DATABASE_ADMIN_URL, so say it here too.
            log.warning(
                "db.migration.search_not_indexable",
                reason=f"{SEARCH_MATCH_FUNCTION} is not LEAKPROOF in this database: full-text "
                "search (q) stays correct but cannot use its index under row-level security",
                fix="run `convoforge migrate` once with DATABASE_ADMIN_URL naming a superuser, "
                f"or as a superuser: ALTER FUNCTION {SEARCH_MATCH_FUNCTION} LEAKPROOF",
            )
        return applied
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               name text PRIMARY KEY,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = await conn.fetch("SELECT name, checksum FROM schema_migrations")
    applied = {row["name"]: row["checksum"] for row in rows}
    done = []
    for migration in migrations:
        recorded = applied.get(migration.name)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was edited after it was applied "
                    f"(recorded checksum {recorded[:12]}, file now {migration.checksum[:12]}); "
                    "restore the file and add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                migration.name,
                migration.checksum,
            )
        log.info("db.migration.applied", migration=migration.name)
        done.append(migration.name)
    return done
