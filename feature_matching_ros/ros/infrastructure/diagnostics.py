"""Health of a node for /diagnostics: rates, latency, drops, failures; and throttled error logging.

``Monitor`` is plain Python (thread-safe, bounded memory); ``to_status`` turns its report into a
diagnostic_msgs/DiagnosticStatus.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OK, WARN, ERROR, STALE = 0, 1, 2, 3
_LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


@dataclass
class Report:
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class Monitor:
    """Counts inputs, processed and dropped items, latencies, inlier ratios and failures.

    An error (bad input, a failed build...) keeps the status at ERROR for ``error_hold_s`` seconds
    after it last happened, so a 1 Hz diagnostics reader sees it.
    """

    def __init__(
        self, window: int = 100, error_hold_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self._lock = threading.Lock()
        self._clock = clock
        self._arrivals: deque[float] = deque(maxlen=window)
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._inlier_ratio: deque[float] = deque(maxlen=window)
        self._error_hold_s = error_hold_s
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.failures: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._last_error: tuple[float, str] | None = None
        self._persistent_error: str | None = None

    def input(self) -> None:
        with self._lock:
            self.received += 1
            self._arrivals.append(self._clock())

    def done(self, latency_ms: float, inlier_ratio: float | None = None) -> None:
        with self._lock:
            self.processed += 1
            self._latency_ms.append(latency_ms)
            if inlier_ratio is not None:
                self._inlier_ratio.append(inlier_ratio)

    def drop(self, count: int = 1) -> None:
        with self._lock:
            self.dropped += count

    def failure(self, reason: str) -> None:
        """A processed item without a usable result (e.g. geometry failed): WARN, not ERROR."""
        with self._lock:
            self.failures[reason] += 1

    def error(self, category: str, message: str) -> None:
        """Bad input or a fault: the item is dropped and the status is ERROR for a while."""
        with self._lock:
            self.errors[category] += 1
            self._last_error = (self._clock(), f"{category}: {message}")

    def set_persistent_error(self, message: str | None) -> None:
        """An error that lasts until cleared (no reference image, matcher not built, ...)."""
        with self._lock:
            self._persistent_error = message

    @property
    def persistent_error(self) -> str | None:
        with self._lock:
            return self._persistent_error

    def report(self) -> Report:
        with self._lock:
            now = self._clock()
            arrivals = list(self._arrivals)
            rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
            if arrivals and now - arrivals[-1] > 5.0:
                rate = 0.0
            latency = np.asarray(self._latency_ms, np.float64)
            ratios = np.asarray(self._inlier_ratio, np.float64)
            values = {
                "input_rate_hz": f"{rate:.2f}",
                "received": str(self.received),
                "processed": str(self.processed),
                "dropped": str(self.dropped),
                "latency_ms_median": f"{np.median(latency):.1f}" if latency.size else "nan",
                "latency_ms_p95": f"{np.percentile(latency, 95):.1f}" if latency.size else "nan",
                "inlier_ratio_mean": f"{ratios.mean():.3f}" if ratios.size else "nan",
                "failures": str(sum(self.failures.values())),
                "errors": str(sum(self.errors.values())),
            }
            for reason, count in self.failures.most_common(3):
                values[f"failure: {reason}"] = str(count)
            for category, count in self.errors.most_common(5):
                values[f"error: {category}"] = str(count)
            if self._persistent_error:
                return Report(ERROR, self._persistent_error, values)
            if self._last_error and now - self._last_error[0] < self._error_hold_s:
                return Report(ERROR, self._last_error[1], values)
            if self.received == 0:
                return Report(WARN, "no input received yet", values)
            if self.failures and self.processed and sum(self.failures.values()) >= self.processed:
                return Report(WARN, "no usable result yet", values)
            return Report(OK, f"{self.processed} processed, {self.dropped} dropped", values)


class ThrottledLog:
    """Log each category at most once per ``period_s`` seconds, saying how many were suppressed."""

    def __init__(
        self, log: Callable[[str], None], period_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ):
        self._log = log
        self._period = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, category: str, message: str) -> bool:
        with self._lock:
            now = self._clock()
            last = self._last.get(category)
            if last is not None and now - last < self._period:
                self._suppressed[category] += 1
                return False
            self._last[category] = now
            suppressed = self._suppressed.pop(category, 0)
        suffix = f" ({suppressed} similar suppressed)" if suppressed else ""
        self._log(f"{category}: {message}{suffix}")
        return True


def to_status(report: Report, name: str, hardware_id: str = "") -> object:
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(
        level=bytes([report.level]),
        name=name,
        message=report.message[:500],
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in report.values.items()],
    )


def level_name(level: int) -> str:
    return _LEVEL_NAMES.get(level, str(level))


def steady_timer(node: Any, period_s: float, callback: Callable[[], None]) -> Any:
    """A timer on the steady clock: diagnostics and housekeeping keep running while a replayed
    bag's /clock (use_sim_time) is paused or not yet started."""
    from rclpy.clock import Clock, ClockType

    return node.create_timer(period_s, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))
