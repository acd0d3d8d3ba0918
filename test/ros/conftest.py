"""Fixtures for tests over real rclpy and DDS (Fast DDS from the wheels, localhost discovery only).

Without rclpy or the package's built messages the tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator

import pytest

# One domain per test process, so concurrent runs on the same machine do not see each other.
DOMAIN_ID = random.SystemRandom().randint(1, 100)
TIMEOUT_S = 20.0


def _require_ros() -> None:
    try:
        import rclpy  # noqa: F401
        from feature_matching_ros.msg import GeometryEstimate, MatchArray  # noqa: F401
    except ImportError as exc:
        missing = str(exc)
    else:
        return
    reason = (
        f"ROS 2 not available ({missing}); build the messages with `make setup` (venv) "
        "or colcon build (ROS machine)"
    )
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def ros_context(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An initialised rclpy context of its own (localhost discovery, a per-process domain id)."""
    _require_ros()
    import rclpy

    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_STATIC_PEERS", raising=False)
    monkeypatch.setenv("ROS_DOMAIN_ID", str(DOMAIN_ID))
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


def spin_until(
    executor: object, done: Callable[[], bool], timeout: float = TIMEOUT_S, what: str = ""
) -> None:
    """Spin ``executor`` until ``done()`` is true; fail the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or 'the condition'}")
        executor.spin_once(timeout_sec=0.05)


@pytest.fixture
def running(ros_context):
    """Start nodes: ``running(matcher={...}, geometry={...})`` -> (harness, executor, nodes).

    Parameters not given default to fast diagnostics (0.2 s) for the tests."""
    from rclpy.parameter import Parameter

    from feature_matching_ros.ros.infrastructure.spin import make_executor
    from feature_matching_ros.ros.nodes.geometry_node import GeometryNode
    from feature_matching_ros.ros.nodes.matcher_node import FeatureMatcherNode

    made = []
    executor = make_executor(ros_context)

    def start(matcher: dict | None = None, geometry: dict | None = None):
        nodes = {}
        if matcher is not None:
            overrides = [Parameter(k, value=v) for k, v in {"diagnostics_period": 0.2, **matcher}.items()]
            nodes["matcher"] = FeatureMatcherNode(context=ros_context, parameter_overrides=overrides)
        if geometry is not None:
            overrides = [Parameter(k, value=v) for k, v in {"diagnostics_period": 0.2, **geometry}.items()]
            nodes["geometry"] = GeometryNode(context=ros_context, parameter_overrides=overrides)
        from .harness import Harness

        harness = Harness(ros_context)
        made.extend([*nodes.values(), harness])
        for node in [*nodes.values(), harness.node]:
            executor.add_node(node)
        matcher = matcher or {}
        harness.wait_for_subscribers(
            executor,
            compressed=matcher.get("image_transport") == "compressed",
            info=matcher.get("use_camera_info", True) or geometry is not None,
        )
        # The nodes draw debug pictures only for subscribers: wait until they see the harness's.
        outputs = {topic.lstrip("/") for topic in harness.outputs}
        publishers = [
            pub for node in nodes.values() for pub in node.publishers if pub.topic_name.lstrip("/") in outputs
        ]
        spin_until(
            executor,
            lambda: all(pub.get_subscription_count() > 0 for pub in publishers),
            what="the nodes to see the harness's subscriptions",
        )
        if geometry is not None and geometry.get("publish_debug", True):
            spin_until(
                executor, lambda: nodes["geometry"].takes_images, what="the overlay's image subscription"
            )
        return harness, executor, nodes

    yield start
    executor.shutdown()
    for item in made:
        (item.destroy_node if hasattr(item, "destroy_node") else item.destroy)()
