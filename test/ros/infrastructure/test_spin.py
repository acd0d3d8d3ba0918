"""Running nodes until shutdown: the clean-up that cannot hang, Ctrl-C, and shutdown races."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ..conftest import DOMAIN_ID

pytestmark = pytest.mark.ros


def _env() -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("ROS_STATIC_PEERS", None)
    return env


def test_a_hanging_clean_up_ends_the_process_and_says_where(tmp_path):
    """Should the middleware's teardown hang, the process still ends promptly (before `ros2 launch`
    escalates to SIGTERM and SIGKILL), with the place it hung at on stderr."""
    script = tmp_path / "hang.py"
    script.write_text(
        "import time\n"
        "from feature_matching_ros.ros.infrastructure import spin\n"
        "class Stuck:\n"
        "    def destroy_node(self):\n"
        "        time.sleep(60)\n"
        "spin.CLEAN_UP_TIMEOUT_S = 0.5\n"
        "spin._clean_up([Stuck()], 2)\n"
        "print('not reached')\n"
    )
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert time.monotonic() - start < 20
    assert done.returncode == 2 and "not reached" not in done.stdout  # the exit code it would have had
    assert "did not finish within 0.5 s" in done.stderr and "destroy_node" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_shutdown_between_the_executors_check_and_its_wait_is_a_clean_stop():
    """rclpy's SIGINT handler shuts the context down from its own thread; landing after the executor
    checked the context, it made the real executor raise RCLError (a node exited 1 on Ctrl-C in CI).
    Here the shutdown lands at that point every time."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.impl.implementation_singleton import rclpy_implementation

    from feature_matching_ros.ros.infrastructure.spin import spin_until_shutdown

    raised = []

    class ShutDownAfterTheCheck(SingleThreadedExecutor):
        def spin(self) -> None:
            while self.context.ok():
                self.context.try_shutdown()
                try:
                    self.spin_once(timeout_sec=0.1)
                except Exception as exc:
                    raised.append(exc)
                    raise

    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    node = rclpy.create_node("shutdown_race", context=context)
    executor = ShutDownAfterTheCheck(context=context)
    executor.add_node(node)
    try:
        with pytest.raises(ExternalShutdownException):
            spin_until_shutdown(executor)
        assert [type(e) for e in raised] == [rclpy_implementation.RCLError]  # what rclpy raised there
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


def test_an_rcl_error_while_the_context_is_up_is_not_taken_for_a_shutdown():
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.impl.implementation_singleton import rclpy_implementation

    from feature_matching_ros.ros.infrastructure.spin import spin_until_shutdown

    def fail() -> None:
        raise rclpy_implementation.RCLError("a failure of rcl in a callback")

    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    node = rclpy.create_node("rcl_error", context=context)
    node.create_timer(0.01, fail)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        with pytest.raises(rclpy_implementation.RCLError, match="a failure of rcl"):
            spin_until_shutdown(executor)
        assert context.ok()
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


def test_ctrl_c_stops_the_nodes_without_interrupting_their_python_code(tmp_path):
    """rclpy's SIGINT handler shuts the context down, which ends the spin; Python's own handler would
    also raise KeyboardInterrupt at whatever line the main thread is running, even half-way through
    rclpy building a Task (seen in CI: "Exception ignored in Future.__del__" on stderr at Ctrl-C).
    A node whose timer keeps the main thread in Python must stop without that interruption."""
    script = tmp_path / "busy.py"
    script.write_text(
        "import sys, time\n"
        "from rclpy.node import Node\n"
        "from feature_matching_ros.ros.infrastructure import spin\n"
        "class Busy(Node):\n"
        "    def __init__(self):\n"
        "        super().__init__('fm_busy_probe')\n"
        "        self.create_timer(0.01, self.work)\n"
        "        print('spinning', flush=True)\n"
        "    def work(self):\n"
        "        try:\n"
        "            end = time.monotonic() + 0.05\n"
        "            while time.monotonic() < end:\n"
        "                pass\n"
        "        except KeyboardInterrupt:\n"
        "            print('KeyboardInterrupt inside a callback', flush=True)\n"
        "            raise\n"
        "sys.exit(spin.run_nodes([Busy]))\n"
    )
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, str(script)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout.readline().strip() == "spinning"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 0, output
        assert "KeyboardInterrupt" not in output and "Traceback" not in output, output
