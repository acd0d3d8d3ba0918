"""Run both nodes in this process over a bag, frame by frame, and collect their answers.

This is how ``fm-eval`` measures the ROS pipeline: the real nodes on a real executor, talking over
DDS to a player node that feeds them the bag one frame at a time (``lockstep``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from feature_matching_ros.core.errors import FeatureMatchingError

from .lockstep import FrameOutcome, LockstepPlayer

READY_TIMEOUT = 600.0  # map tiles of a large map on a slow CPU


def run_on_bag(
    bag: str | Path,
    parameters: Mapping[str, Mapping[str, Any]],
    *,
    exclude: Iterable[str] = (),
    on_frame: Callable[[FrameOutcome], None] | None = None,
    on_ready: Callable[[int], None] | None = None,
    answer_timeout: float = 30.0,
    first_answered: bool = True,
) -> list[FrameOutcome]:
    """The outcome of every camera frame of ``bag``; ``parameters``: node name -> overrides.

    ``on_ready(frame_count)`` is called once the matcher is built and the map loaded.
    """
    import rclpy
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from ..infrastructure.dds import use_large_image_profile
    from ..infrastructure.spin import make_executor
    from ..nodes.geometry_node import GeometryNode
    from ..nodes.matcher_node import FeatureMatcherNode

    use_large_image_profile()
    context = rclpy.Context()
    rclpy.init(context=context, args=["fm-eval"])
    nodes: list[Node] = []
    executor = make_executor(context)
    spinner = threading.Thread(target=_spin, args=(executor,), daemon=True, name="fm-eval-executor")
    player = None
    try:
        for cls, name in ((FeatureMatcherNode, "feature_matcher"), (GeometryNode, "geometry")):
            overrides = [Parameter(k, value=v) for k, v in parameters.get(name, {}).items()]
            nodes.append(cls(context=context, parameter_overrides=overrides))
        driver = Node("fm_eval_player", context=context)
        nodes.append(driver)
        for node in nodes:
            executor.add_node(node)
        spinner.start()
        player = LockstepPlayer(
            driver, bag, exclude=exclude, answer_timeout=answer_timeout, first_answered=first_answered
        )
        matcher = nodes[0]
        deadline = time.monotonic() + READY_TIMEOUT
        while not matcher.ready:
            reason = matcher.monitor.persistent_error
            if reason:
                raise FeatureMatchingError(f"the matcher node cannot run: {reason}")
            if time.monotonic() > deadline:
                raise FeatureMatchingError(f"the matcher node was not ready after {READY_TIMEOUT:.0f} s")
            time.sleep(0.1)
        reason = nodes[1].monitor.persistent_error
        if reason:
            raise FeatureMatchingError(f"the geometry node cannot run: {reason}")
        lonely = player.wait_for_subscribers(10.0)
        if any("image_raw" in topic for topic in lonely):
            raise FeatureMatchingError(f"nobody subscribes the camera topics {lonely}")
        if on_ready is not None:
            on_ready(player.frame_count)
        return player.play(on_frame)
    finally:
        if player is not None:
            player.close()
        executor.shutdown(timeout_sec=1.0)
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)
        spinner.join(timeout=5.0)


def _spin(executor: Any) -> None:
    from rclpy.executors import ExternalShutdownException

    from ..infrastructure.spin import spin_until_shutdown

    try:
        spin_until_shutdown(executor)
    except ExternalShutdownException:
        pass
