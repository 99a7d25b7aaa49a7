"""App tests (Pilot and snapshots); shared helpers below, fixtures in conftest.py."""

from __future__ import annotations

import asyncio


async def wait_until(pilot, predicate, timeout: float = 30.0) -> None:
    """Let the app run until ``predicate()`` holds; AssertionError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError("condition not met in time")
