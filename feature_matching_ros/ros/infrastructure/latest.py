"""A worker thread that always processes the newest submitted item and drops the ones it skipped.

Camera callbacks must return at once; when matching is slower than the camera, frames that a newer
frame replaced before the worker reached them are dropped (and counted), so memory and latency stay
bounded at one pending item whatever the input rate.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestWorker(Generic[T]):
    """``process(item)`` runs on one background thread; ``on_error(item, exc)`` gets its exceptions."""

    def __init__(
        self,
        process: Callable[[T], None],
        on_error: Callable[[T, Exception], None],
        name: str = "latest-worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._cond = threading.Condition()
        self._pending: T | None = None
        self._has_pending = False
        self._busy = False
        self._stopped = False
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue ``item``; True when it replaced (dropped) a pending one. Ignored once stopped."""
        with self._cond:
            if self._stopped:
                return False
            self.submitted += 1
            replaced = self._has_pending
            if replaced:
                self.dropped += 1
            self._pending, self._has_pending = item, True
            self._cond.notify()
            return replaced

    def idle(self) -> bool:
        """Nothing pending and nothing being processed."""
        with self._cond:
            return not self._has_pending and not self._busy

    def busy(self) -> bool:
        """An item is being processed."""
        with self._cond:
            return self._busy

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._has_pending and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the item in progress, drop a pending one, and end the thread."""
        with self._cond:
            self._stopped = True
            if self._has_pending:
                self.dropped += 1
            self._pending, self._has_pending = None, False
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_pending or self._stopped)
                if self._stopped:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            try:
                self._process(item)
            except Exception as exc:  # the worker thread must survive any failure
                self._on_error(item, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self.processed += 1
                    self._cond.notify_all()
