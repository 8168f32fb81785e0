"""The migration runner: idempotent, and refuses an edited applied file."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared.db.bootstrap import drop_database, ensure_role_and_database
from shared.db.migrate import MIGRATIONS_DIR, MigrationError, load_migrations, migrate
from tests.conftest import ADMIN_URL, APP_ROLE


@pytest.fixture
async def scratch_db() -> AsyncIterator[str]:
    """An empty database of its own."""
    name = f"convoforge_mig_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    await ensure_role_and_database(ADMIN_URL, url)
    yield url
    await drop_database(ADMIN_URL, name)


async def test_applying_twice_is_a_no_op(scratch_db: str) -> None:
    first = await migrate(scratch_db)
    second = await migrate(scratch_db)
    assert first == [m.name for m in load_migrations()]
    assert second == []
    conn = await asyncpg.connect(scratch_db)
    try:
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert count == len(first)


async def test_edited_applied_file_is_refused(scratch_db: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    await migrate(scratch_db, migrations)
    first = sorted(migrations.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- sneaky edit\n")
    with pytest.raises(MigrationError, match=f"{first.name} was edited after it was applied"):
        await migrate(scratch_db, migrations)


async def test_new_file_is_applied_after_existing_ones(scratch_db: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations)
    await migrate(scratch_db, migrations)
    (migrations / "9999_extra.sql").write_text("CREATE TABLE extra_probe (id int);")
    assert await migrate(scratch_db, migrations) == ["9999_extra.sql"]


async def test_app_role_is_ordinary(scratch_db: str) -> None:
    conn = await asyncpg.connect(scratch_db)
    try:
        row = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["rolsuper"], row["rolbypassrls"]) == (False, False)
