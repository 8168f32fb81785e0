"""`convoforge` console script: migrations, users, API keys, one-off jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import asyncpg

from shared import cli_client
from shared.cli_client.http import ApiError
from shared.console_auth import UnknownUser, mint_login_link
from shared.db.bootstrap import ensure_role_and_database
from shared.db.migrate import MigrationError, migrate
from shared.db.repositories import users as users_repo
from shared.logging import configure_logging
from shared.models.user import UserRole
from shared.queue import PING, SERVICES, create_redis, enqueue, job_id, job_state
from shared.security import mint_key
from shared.settings import Settings, get_settings


class CommandError(Exception):
    """A command failed in a way the operator can fix; printed without a traceback."""


async def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    """Create the role and database when an admin DSN is set, then apply migrations."""
    if settings.database_admin_url:
        await ensure_role_and_database(settings.database_admin_url, settings.database_url)
    try:
        applied = await migrate(settings.database_url)
    except MigrationError as exc:
        raise CommandError(str(exc)) from exc
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


async def cmd_create_user(settings: Settings, args: argparse.Namespace) -> None:
    """Create a user."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        role = UserRole.ADMIN if args.admin else UserRole.USER
        user = await users_repo.create_user(conn, email=args.email, role=role)
    except asyncpg.UniqueViolationError as exc:
        raise CommandError(f"a user with email {args.email} already exists") from exc
    finally:
        await conn.close()
    print(f"created user {user.email} ({user.role.value}) id={user.id}")


async def cmd_create_api_key(settings: Settings, args: argparse.Namespace) -> None:
    """Mint a key for a user; the key alone is the last line printed."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        user = await users_repo.get_user_by_email(conn, args.email)
        if user is None:
            raise CommandError(f"no user with email {args.email}; run create-user first")
        key = mint_key()
        stored = await users_repo.insert_api_key(conn, user_id=user.id, name=args.name, key=key)
    finally:
        await conn.close()
    print(f"API key {stored.prefix} ({stored.name}) for {user.email}; it is shown only once:")
    print(key.plaintext)


async def cmd_revoke_api_key(settings: Settings, args: argparse.Namespace) -> None:
    """Revoke a key by its visible prefix."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        revoked = await users_repo.revoke_api_key(conn, args.prefix)
    finally:
        await conn.close()
    if revoked is None:
        raise CommandError(f"no active API key with prefix {args.prefix}")
    print(f"revoked API key {revoked.prefix}")


async def cmd_login_link(settings: Settings, args: argparse.Namespace) -> None:
    """Print a one-time console sign-in link for a user (the link alone on the last line)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        url = await mint_login_link(conn, settings, args.email)
    except UnknownUser as exc:
        raise CommandError(f"no user with email {args.email}; run create-user first") from exc
    finally:
        await conn.close()
    minutes = settings.console_login_link_minutes
    print(f"console sign-in link for {args.email}, usable once within {minutes} minutes:")
    print(url)


async def cmd_ping(settings: Settings, args: argparse.Namespace) -> None:
    """Enqueue a ping on a worker service and wait for its answer."""
    redis = create_redis(settings)
    try:
        jid = job_id(PING, args.service, _nonce())
        await enqueue(redis, settings, args.service, PING, job_id=jid)
        for _ in range(int(args.timeout * 10)):
            state = await job_state(redis, settings, args.service, jid)
            if state.status == "complete":
                print(state.result)
                return
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    raise CommandError(f"no {args.service} worker answered within {args.timeout} s")


def _nonce() -> str:
    return uuid.uuid4().hex


async def cmd_janitor(settings: Settings, args: argparse.Namespace) -> None:
    """`janitor run JOB`: run one janitor task now; `janitor list`: tasks and schedules."""
    # Imported here: the janitor is a service; the other commands must not need it.
    from services.janitor.context import open_deps
    from services.janitor.runner import TASKS, run_task, schedule_of

    if args.janitor_command == "list":
        for name, task in TASKS.items():
            print(f"{name:24} {schedule_of(settings, name).expression:14} {task.summary}")
        return
    async with open_deps(settings) as deps:
        report = await run_task(deps, args.job)
    print(json.dumps(report.as_dict(), sort_keys=True))
    if report.outcome == "skipped":
        raise CommandError(f"another janitor is running {args.job} right now; try again later")


Handler = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="convoforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create role/database if needed, apply migrations")
    user = sub.add_parser("create-user", help="create a user")
    user.add_argument("email")
    user.add_argument("--admin", action="store_true")
    key = sub.add_parser("create-api-key", help="mint an API key (printed alone on the last line)")
    key.add_argument("email")
    key.add_argument("--name", default="default")
    revoke = sub.add_parser("revoke-api-key", help="revoke a key by prefix")
    revoke.add_argument("prefix")
    link = sub.add_parser("login-link", help="print a one-time console sign-in link (15 min)")
    link.add_argument("email")
    ping = sub.add_parser("ping", help="round-trip a job through a worker service")
    ping.add_argument("service", choices=SERVICES)
    ping.add_argument("--timeout", type=float, default=10.0)
    _add_janitor_parser(sub)
    cli_client.register(sub)
    return parser


def _add_janitor_parser(sub: Any) -> None:
    from services.janitor.runner import TASK_NAMES

    janitor = sub.add_parser("janitor", help="janitor tasks (DESIGN.md §7)")
    actions = janitor.add_subparsers(dest="janitor_command", required=True)
    run = actions.add_parser("run", help="run one janitor task now (waits for it)")
    run.add_argument("job", choices=TASK_NAMES)
    actions.add_parser("list", help="the janitor tasks and their schedules")


HANDLERS: dict[str, Handler] = {
    "migrate": cmd_migrate,
    "create-user": cmd_create_user,
    "create-api-key": cmd_create_api_key,
    "revoke-api-key": cmd_revoke_api_key,
    "ping": cmd_ping,
    "login-link": cmd_login_link,
    "janitor": cmd_janitor,
    **cli_client.HANDLERS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    try:
        asyncio.run(HANDLERS[args.command](settings, args))
    except (CommandError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
