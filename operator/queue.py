"""The operator's work queue: which InferenceModels to reconcile next.

Modelled on client-go's workqueue: a key waits at most once in the queue
however often it is added; a key added while a worker reconciles it is queued
again when that worker is done (never reconciled twice at once); failures
come back after an exponential, capped delay that success resets. Keys are
`(namespace, name)` pairs; everything that should make a model reconcile
(a watch event, a registry alias move, the periodic resync, a retry) adds
its key here, and the reconcile itself is level-triggered: it reads what
is, not what happened.

Not thread-safe: call it on the event loop's thread (other threads use
`loop.call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down; workers stop."""


class WorkQueue(Generic[K]):
    """Deduplicating FIFO of keys with delayed adds and per-key backoff."""

    def __init__(self, *, base_delay: float = 0.5, max_delay: float = 300.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._order: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._again: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._wakeup = asyncio.Condition()
        self._shut = False

    def __len__(self) -> int:
        return len(self._order)

    @property
    def waiting(self) -> int:
        """Keys queued now or scheduled for later."""
        return len(self._queued | set(self._timers))

    def add(self, key: K) -> None:
        """Reconcile `key` as soon as a worker is free."""
        if self._shut:
            return
        self._cancel_timer(key)
        if key in self._processing:
            self._again.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._order.append(key)
        asyncio.get_running_loop().create_task(self._notify())

    def add_after(self, key: K, delay: float) -> None:
        """Reconcile `key` in `delay` seconds, unless it is due earlier anyway."""
        if self._shut:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        current = self._timers.get(key)
        if current is not None and current[0] <= due:
            return
        self._cancel_timer(key)
        self._timers[key] = (due, loop.call_later(delay, self._fire, key))

    def add_rate_limited(self, key: K) -> float:
        """Retry `key` after a delay that doubles with each failure since the last
        `forget`; returns the delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * float(2**failures))
        self.add_after(key, delay)
        return delay

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """`key` succeeded: its next failure starts from the base delay again."""
        self._failures.pop(key, None)

    async def get(self) -> K:
        """The next key to reconcile; the caller must call `done(key)` afterwards."""
        async with self._wakeup:
            await self._wakeup.wait_for(lambda: bool(self._order) or self._shut)
            if self._shut:
                raise ShutDown
            key = self._order.popleft()
            self._queued.discard(key)
            self._processing.add(key)
            return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    async def shutdown(self) -> None:
        self._shut = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        async with self._wakeup:
            self._wakeup.notify_all()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _cancel_timer(self, key: K) -> None:
        entry = self._timers.pop(key, None)
        if entry is not None:
            entry[1].cancel()

    async def _notify(self) -> None:
        async with self._wakeup:
            self._wakeup.notify()
