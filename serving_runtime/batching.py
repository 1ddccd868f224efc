"""Adaptive batching: concurrent requests coalesce into one model call.

The model runs on its own thread, never on the event loop, so health probes
answer under full load. While the model works, new requests queue; when it is
free it takes everything queued (up to `max_batch_size` rows) as one call. It
waits up to `max_latency_ms` for more rows only while requests are known to
be on their way (received, not yet queued), so a lone request never pays the
wait and a busy server never idles waiting for a batch to fill. A batch that fails is
retried request by request, so an error reaches only the request that caused
it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from seaway.serving_runtime.inputs import Rows, concat
from seaway.serving_runtime.model import split


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[Any]


class Dispatcher:
    """Runs model calls off the event loop, one request or one batch at a time."""

    def __init__(
        self,
        call: Callable[[Rows], Any],
        *,
        max_batch_size: int = 1,
        max_latency_ms: float = 0.0,
        on_batch: Callable[[int], None] = lambda rows: None,
        arriving: Callable[[], int] = lambda: 0,
        threads: int = 1,
    ) -> None:
        self._call = call
        self._max_rows = max_batch_size
        self._max_wait = max_latency_ms / 1000.0
        self._on_batch = on_batch
        self._arriving = arriving
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="model")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def batching(self) -> bool:
        return self._max_rows > 1

    def start(self) -> None:
        if self.batching:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, rows: Rows) -> Any:
        """The model's output for these rows (raises what the model raised)."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._on_batch(rows.n)
            return await loop.run_in_executor(self._executor, self._call, rows)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put_nowait(_Pending(rows, future))
        return await future

    async def _collect(self, queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        batch = [await queue.get()]
        size = batch[0].rows.n
        while size < self._max_rows and not queue.empty():
            item = queue.get_nowait()
            batch.append(item)
            size += item.rows.n
        if size < self._max_rows and self._max_wait > 0 and self._arriving() > 0:
            deadline = asyncio.get_running_loop().time() + self._max_wait
            while size < self._max_rows and self._arriving() > 0:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                batch.append(item)
                size += item.rows.n
        return batch

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect(self._queue)
            live = [p for p in batch if not p.future.done()]
            if not live:
                continue
            rows = [p.rows for p in live]
            self._on_batch(sum(r.n for r in rows))
            try:
                output = await loop.run_in_executor(self._executor, self._run_batch, rows)
            except Exception as error:
                if len(live) == 1:
                    live[0].future.set_exception(error)
                else:
                    await self._one_by_one(live)
                continue
            for pending, part in zip(live, output, strict=True):
                if not pending.future.done():
                    pending.future.set_result(part)

    def _run_batch(self, rows: list[Rows]) -> list[Any]:
        if len(rows) == 1:
            return [self._call(rows[0])]
        return split(self._call(concat(rows)), [r.n for r in rows])

    async def _one_by_one(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        for pending in batch:
            try:
                result = await loop.run_in_executor(self._executor, self._call, pending.rows)
            except Exception as error:
                if not pending.future.done():
                    pending.future.set_exception(error)
            else:
                if not pending.future.done():
                    pending.future.set_result(result)
