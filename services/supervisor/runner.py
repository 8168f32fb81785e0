"""Run every process of a Procfile; restart one that exits, with capped backoff; stop on signal.

honcho (the previous runner) stops the whole stack when any process exits, so a worker dying
in a Redis outage took the API down with it. Here each process has its own restart loop: a
process that exits is started again after 1 s, 2 s, 4 s ... (capped), the delay resetting once
it has stayed up for a while; the others never notice. SIGINT/SIGTERM stops them all: SIGTERM
to each process group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Longest output line passed through whole (structured log lines with tracebacks can be long).
_LINE_LIMIT: Final = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One Procfile line: `name: command`."""

    name: str
    command: list[str]


@dataclass(frozen=True)
class Policy:
    """Restart delays and the stop grace period, in seconds."""

    first_backoff: float = 1.0
    max_backoff: float = 30.0
    stable_after: float = 30.0
    grace: float = 15.0


def parse_procfile(text: str) -> list[Entry]:
    """Entries of a Procfile (blank lines and `#` comments ignored)."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, command = stripped.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise ValueError(f"Procfile line {number}: expected 'name: command', got {line!r}")
        entries.append(Entry(name.strip(), shlex.split(command)))
    return entries


def say(name: str, width: int, line: str) -> None:
    """One output line, prefixed with the process's name."""
    sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{width}} | {line}\n")
    sys.stdout.flush()


class Supervised:
    """One process and its restart loop."""

    def __init__(self, entry: Entry, policy: Policy, width: int, stopping: asyncio.Event) -> None:
        self.entry, self.policy, self.width = entry, policy, width
        self.stopping = stopping
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def keep_running(self) -> None:
        """Start the process, and start it again whenever it exits, until stopping."""
        delay = self.policy.first_backoff
        while not self.stopping.is_set():
            started = time.monotonic()
            code = await self._run_once()
            if self.stopping.is_set():
                return
            if time.monotonic() - started >= self.policy.stable_after:
                delay = self.policy.first_backoff
            self._say(f"exited with code {code}; restarting in {delay:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            delay = min(2 * delay, self.policy.max_backoff)

    async def _run_once(self) -> int:
        self.starts += 1
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.entry.command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children too
                limit=_LINE_LIMIT,
            )
        except OSError as exc:  # not installed, not executable: tried again like a crash
            self._say(f"cannot start: {exc}")
            return 127
        self._say(f"started (pid {self.process.pid})")
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self._say(raw.decode(errors="replace").rstrip("\n"))
        return await self.process.wait()

    def signal(self, signum: int) -> None:
        """Send `signum` to the process group, if it is running."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def _say(self, line: str) -> None:
        say(self.entry.name, self.width, line)


async def supervise(entries: list[Entry], policy: Policy) -> None:
    """Run until SIGINT/SIGTERM, then stop every process (SIGKILL after the grace period)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    width = max(len(entry.name) for entry in entries)
    children = [Supervised(entry, policy, width, stopping) for entry in entries]
    loops = [asyncio.create_task(child.keep_running()) for child in children]
    await stopping.wait()
    say("supervisor", width, "stopping every process")
    for child in children:
        child.signal(signal.SIGTERM)
    _, late = await asyncio.wait(loops, timeout=policy.grace)
    for child in children:
        child.signal(signal.SIGKILL)
    await asyncio.gather(*late, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    """Command line: `python -m services.supervisor PROCFILE [--max-backoff S] ...`."""
    parser = argparse.ArgumentParser(prog="python -m services.supervisor")
    parser.add_argument("procfile", type=Path)
    parser.add_argument("--first-backoff", type=float, default=Policy.first_backoff)
    parser.add_argument("--max-backoff", type=float, default=Policy.max_backoff)
    parser.add_argument("--stable-after", type=float, default=Policy.stable_after)
    parser.add_argument("--grace", type=float, default=Policy.grace)
    args = parser.parse_args(argv)
    entries = parse_procfile(args.procfile.read_text())
    if not entries:
        parser.error(f"{args.procfile} has no processes")
    policy = Policy(args.first_backoff, args.max_backoff, args.stable_after, args.grace)
    asyncio.run(supervise(entries, policy))
