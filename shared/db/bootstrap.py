"""Create the application role and database through the admin DSN when they are missing."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import asyncpg

from shared.logging import get_logger

log = get_logger(__name__)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parse_app_dsn(dsn: str) -> tuple[str, str, str]:
    """The role, password and database an application DSN names."""
    parts = urlsplit(dsn)
    role = unquote(parts.username or "")
    password = unquote(parts.password or "")
    database = unquote(parts.path.lstrip("/"))
    if not role or not database:
        raise ValueError("DATABASE_URL must name a role and a database")
    return role, password, database


async def ensure_role_and_database(admin_dsn: str, app_dsn: str) -> None:
    """Create an ordinary login role (no superuser, no BYPASSRLS) and its database."""
    role, password, database = parse_app_dsn(app_dsn)
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            await conn.execute(
                f"CREATE ROLE {_quote_ident(role)} LOGIN NOSUPERUSER NOBYPASSRLS "
                f"NOCREATEDB NOCREATEROLE PASSWORD {_quote_literal(password)}"
            )
            log.info("db.bootstrap.role_created", role=role)
        has_db = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not has_db:
            await conn.execute(
                f"CREATE DATABASE {_quote_ident(database)} OWNER {_quote_ident(role)}"
            )
            log.info("db.bootstrap.database_created", database=database)
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    """Drop a database (tests clean up their own)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()
