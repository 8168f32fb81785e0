"""Set-up through the admin DSN: create the application role and database when they are missing,
and let full-text search use its index under row-level security (`ensure_search_leakproof`)."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from shared.logging import get_logger

log = get_logger(__name__)

# The function behind `tsvector @@ tsquery`, the operator of the `q` search.
SEARCH_MATCH_FUNCTION = "pg_catalog.ts_match_vq(tsvector, tsquery)"


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
    await ensure_search_leakproof(admin_dsn, database)


def dsn_for_database(dsn: str, database: str) -> str:
    """The same DSN (role, host, options) naming another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


async def search_is_indexable(conn: asyncpg.Connection) -> bool:
    """Whether `@@` is LEAKPROOF in the connected database, i.e. whether `q` can use an index
    under the app role's forced row-level security."""
    leakproof: bool = await conn.fetchval(
        "SELECT proleakproof FROM pg_proc WHERE oid = $1::regprocedure", SEARCH_MATCH_FUNCTION
    )
    return leakproof


async def ensure_search_leakproof(admin_dsn: str, database: str) -> bool:
    """Mark ts_match_vq (`tsvector @@ tsquery`) LEAKPROOF in `database`; True when it is.

    Under FORCE ROW LEVEL SECURITY PostgreSQL only uses an index for a condition whose functions
    on columns are all LEAKPROOF, so without this `q` is checked row by row. Only a
    superuser may mark a function, and the mark lives in that database's catalog (pg_dump does
    not carry it, a new major version's catalog starts without it), hence on every set-up run.
    Without a superuser (managed PostgreSQL) search stays correct, only slower: warn and go on.
    LEAKPROOF promises that the function reveals nothing about its arguments but its result: no
    side effects, no error that depends on the values; see docs/conversations.md for why
    ts_match_vq keeps that promise.
    """
    try:
        conn = await asyncpg.connect(dsn_for_database(admin_dsn, database))
    except (OSError, asyncpg.PostgresError) as exc:
        # Set-up did its main job (role, database); this part is an optimisation.
        log.warning(
            "db.bootstrap.search_not_indexable",
            database=database,
            reason=f"cannot connect to {database} with the admin DSN ({type(exc).__name__}); "
            "full-text search (q) stays correct but cannot use its index",
            fix=f"as a superuser, in database {database}: "
            f"ALTER FUNCTION {SEARCH_MATCH_FUNCTION} LEAKPROOF",
        )
        return False
    try:
        if await search_is_indexable(conn):
            return True
        superuser = await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        )
        if not superuser:
            log.warning(
                "db.bootstrap.search_not_indexable",
                database=database,
                reason="the admin role is not a superuser, so it cannot mark ts_match_vq "
                "LEAKPROOF; full-text search (q) stays correct but reads every row of the tenant",
                fix=f"as a superuser, in database {database}: "
                f"ALTER FUNCTION {SEARCH_MATCH_FUNCTION} LEAKPROOF",
            )
            return False
        await conn.execute(f"ALTER FUNCTION {SEARCH_MATCH_FUNCTION} LEAKPROOF")
        log.info("db.bootstrap.search_leakproof", database=database)
        return True
    finally:
        await conn.close()


async def drop_database(admin_dsn: str, database: str) -> None:
    """Drop a database (tests clean up their own)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(database)} WITH (FORCE)")
    finally:
        await conn.close()
