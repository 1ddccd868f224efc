"""The work queue: one entry per key, never the same key twice at once, capped backoff."""

from __future__ import annotations

import asyncio

import pytest

from seaway.operator.queue import ShutDown, WorkQueue


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_a_key_added_many_times_waits_once_in_order() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        for key in ("a", "b", "a", "c", "b"):
            queue.add(key)
        assert len(queue) == 3
        assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]

    _run(main())


def test_a_key_added_while_processing_comes_back_after_done_not_before() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add("a")
        key = await queue.get()
        queue.add("a")  # an event arrives while "a" is reconciled
        assert len(queue) == 0  # not handed to a second worker
        queue.done(key)
        assert len(queue) == 1
        assert await queue.get() == "a"

    _run(main())


def test_failures_back_off_exponentially_up_to_the_cap_and_forget_resets() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue(base_delay=0.5, max_delay=3)
        delays = [queue.add_rate_limited("a") for _ in range(5)]
        assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
        queue.forget("a")
        assert queue.add_rate_limited("a") == 0.5
        await queue.shutdown()

    _run(main())


def test_delayed_adds_fire_once_at_the_earliest_due_time() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("a", 0.2)
        queue.add_after("a", 5)  # later than what is scheduled: ignored
        queue.add_after("b", 0.05)
        assert len(queue) == 0 and queue.waiting == 2
        got = [await asyncio.wait_for(queue.get(), 1) for _ in range(2)]
        assert got == ["b", "a"]
        await asyncio.sleep(0.3)
        assert len(queue) == 0

    _run(main())


def test_an_add_now_replaces_a_pending_delayed_add() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_after("a", 0.1)
        queue.add("a")
        assert await queue.get() == "a"
        queue.done("a")
        await asyncio.sleep(0.2)
        assert len(queue) == 0

    _run(main())


def test_shutdown_releases_waiting_workers() -> None:
    async def main() -> None:
        queue: WorkQueue[str] = WorkQueue()
        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0)
        await queue.shutdown()
        with pytest.raises(ShutDown):
            await waiting
        queue.add("late")  # ignored once shut down
        assert len(queue) == 0

    _run(main())


def test_bad_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="base_delay"):
        WorkQueue(base_delay=0)
