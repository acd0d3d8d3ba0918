"""Spin nodes on the package's executor until shutdown, and shut down cleanly even at a second Ctrl-C.

Every node executable's ``main`` and ``fm-navigate`` (``runner``) run their nodes through ``run_nodes``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

from feature_matching_ros.core.errors import FeatureMatchingError

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor


def make_executor(context: Context | None = None) -> SingleThreadedExecutor:
    """The executor the nodes run on: single-threaded, on purpose.

    The callbacks are short (the matcher works in its own thread), and rclpy's
    MultiThreadedExecutor spends about half a core in its Python wait loop at a 30 Hz camera,
    contending for the GIL with the matcher: benchmarks/ros_pipeline.py measured 5.3 frames/s
    with it against 16.4 with this one (xfeat, 640x480, 2 cores).
    """
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor(context=context)


def run_nodes(classes: Sequence[type], args: list[str] | None = None) -> int:
    """Create one node per class, spin them until shutdown.

    Returns the exit code: 0 after Ctrl-C or an external shutdown, 2 on a configuration error.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    from .dds import use_large_image_profile

    profile = use_large_image_profile()
    _stop_without_interrupting()
    rclpy.init(args=args)
    nodes = []
    code = 0
    try:
        for node_class in classes:
            nodes.append(node_class())
        if profile:
            nodes[0].get_logger().info(f"Fast DDS profile for camera images: {profile}")
        executor = make_executor()
        for node in nodes:
            executor.add_node(node)
        spin_until_shutdown(executor)
    except FeatureMatchingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    except rclpy_implementation.RCLError:
        if rclpy.ok():
            raise
        code = 0  # a Ctrl-C while the nodes were being created or added
    finally:
        # A terminal's Ctrl-C reaches the whole process group, and `ros2 launch` then sends its own
        # SIGINT: once stopping, later ones must not interrupt the clean-up.
        _ignore_interrupts()
        _clean_up(nodes, code)
        _ignore_interrupts()  # rclpy.shutdown restores the handler it replaced
    return code


def spin_until_shutdown(executor: SingleThreadedExecutor) -> None:
    """Spin ``executor`` until its context is shut down.

    rclpy's SIGINT handler shuts the context down from its own thread; when that lands between the
    executor's check of the context and its wait set (seen in CI), rclpy raises an RCLError ("the
    given context is not valid") instead of ExternalShutdownException. That is a shutdown too.
    """
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    try:
        executor.spin()
    except rclpy_implementation.RCLError:
        if executor.context.ok():
            raise
        raise ExternalShutdownException() from None


# The middleware's teardown normally takes well under a second; `ros2 launch` escalates to SIGTERM
# after 5 s, which rclpy's handler swallows while it is installed, and then to SIGKILL.
CLEAN_UP_TIMEOUT_S = 4.0


def _clean_up(nodes: list, code: int = 0) -> None:
    """Destroy ``nodes`` and shut rclpy down; if that hangs, say where and end the process anyway
    (with exit code ``code``).
    Seen twice in CI: a geometry node that ignored SIGINT and then SIGTERM (so it was still inside
    rclpy, before its shutdown) until launch killed it; the cause was not found."""
    import rclpy

    def tear_down() -> None:
        for node in nodes:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()

    worker = threading.Thread(target=tear_down, name="ros-clean-up", daemon=True)
    worker.start()
    worker.join(CLEAN_UP_TIMEOUT_S)
    if worker.is_alive():
        frames = sys._current_frames().get(worker.ident)
        where = "".join(traceback.format_stack(frames)) if frames is not None else "(unknown)\n"
        print(
            f"warning: the ROS clean-up did not finish within {CLEAN_UP_TIMEOUT_S:g} s; exiting anyway. "
            f"It was at:\n{where}",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        os._exit(code)


def _stop_without_interrupting() -> None:
    """Make Python's SIGINT handler a no-op: rclpy's own handler, installed by ``rclpy.init``, shuts
    the context down (which ends the spin) and then calls the handler it replaced, Python's, whose
    KeyboardInterrupt would land at whatever line the main thread runs, even half-way through rclpy
    building a Task (seen in CI: "Exception ignored in Future.__del__" at Ctrl-C)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _stop_requested)


def _stop_requested(signum: int, frame: object) -> None:
    """rclpy's handler has shut the context down already."""


def _ignore_interrupts() -> None:
    # No import in here: a second SIGINT arriving during one would interrupt the clean-up.
    if threading.current_thread() is threading.main_thread():  # only there can handlers change
        signal.signal(signal.SIGINT, signal.SIG_IGN)
