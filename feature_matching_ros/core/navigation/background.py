"""A frame's map search and, with ``background_search``, the worker thread that runs one at a time
while the steps go on; a later step collects its outcome."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from ..errors import FeatureMatchingError
from ..geometry import GeometryResult
from ..odometry.keyframe_odometry import OdometryFrame, OdometryStep
from .fix import MapFix
from .localizer import Localization
from .search_types import MapMatch
from .solution import Solution

NOT_SEARCHED = ("pending", "busy")  # MapFix.failed of a frame whose search runs in the background, or none


@dataclass(frozen=True, eq=False)
class FrameSearch:
    """A frame's map search: its inputs (``aids``: the keyword inputs of ``MapLocalizer.localize``;
    ``whole_map``: the deadline of a search of the whole map, if one is due) and what its fix is
    fused with (the frame's prediction, odometry and odometry frame)."""

    image: np.ndarray
    K: np.ndarray
    stamp: float
    whole_map: float | None
    aids: dict
    prediction: Solution | None
    odometry: OdometryStep | None
    frame: OdometryFrame | None


class BackgroundSearch:
    """Runs ``search`` on one frame at a time on a thread of its own."""

    def __init__(self, search: Callable[[FrameSearch], Localization]) -> None:
        self._search = search
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map_search")
        self._pending: tuple[FrameSearch, Future] | None = None

    @property
    def busy(self) -> bool:
        """A search was submitted and not yet collected."""
        return self._pending is not None

    def submit(self, frame: FrameSearch) -> None:
        assert self._pending is None, "one search at a time"
        self._pending = (frame, self._executor.submit(self._search, frame))

    def collect(self) -> tuple[FrameSearch, Localization] | None:
        """The searched frame and its outcome, once the search has ended (a search that raised is
        that frame's failed outcome); None while it runs or without one."""
        if self._pending is None or not self._pending[1].done():
            return None
        (frame, future), self._pending = self._pending, None
        try:
            result = future.result()
        except FeatureMatchingError as exc:
            result = not_searched(frame.stamp, "search", f"the map search failed: {exc}")
        return frame, result

    def wait(self) -> None:
        """Until the search submitted last has ended."""
        if self._pending is not None:
            wait([self._pending[1]])

    def close(self) -> None:
        """Stop the thread (after the search running, if any)."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def not_searched(stamp: float, failed: str, reason: str) -> Localization:
    geometry = GeometryResult.failure("Homography", "", reason, 0)
    nothing = np.zeros((0, 2))
    match = MapMatch(nothing, nothing, np.zeros(0), None, reason)
    return Localization(match, MapFix(stamp, False, reason, geometry, None, failed), 0.0)
