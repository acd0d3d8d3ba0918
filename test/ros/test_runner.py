"""fm-navigate: both nodes in one process from a params file, driven over DDS from this process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from ..conftest import require_file
from .conftest import DOMAIN_ID, spin_until
from .harness import Harness

pytestmark = pytest.mark.ros

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fm_navigate() -> str:
    path = shutil.which("fm-navigate") or os.path.join(os.path.dirname(sys.executable), "fm-navigate")
    if not os.path.exists(path):
        pytest.fail("fm-navigate is not installed: run `make setup`")
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("ROS_STATIC_PEERS", None)
    return env


def test_runner_with_params_file_end_to_end(ros_context, shared_data, graf, tmp_path):
    from rclpy.executors import SingleThreadedExecutor

    from feature_matching_ros.core.geometry import corner_error

    params = yaml.safe_load(open(os.path.join(ROOT, "config", "navigation.yaml")))
    params["feature_matcher"]["ros__parameters"].update(
        reference_mode="map",
        map_image=str(require_file(shared_data / "pairs" / "graf1.png")),
        matcher="xfeat(sparse)",  # the graf bound below is xfeat's (test/core/matching/test_graf.py)
    )
    params["geometry"]["ros__parameters"]["reproj_threshold"] = 3.0
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    process = subprocess.Popen(
        [_fm_navigate(), "--params", str(params_file)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    harness = Harness(ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(harness.node)
    try:
        harness.wait_for_subscribers(executor)
        t = 1.0
        deadline = time.monotonic() + 60
        while not harness.received["geometry"] and time.monotonic() < deadline and process.poll() is None:
            harness.publish_frame(graf[1], t)  # again until the pipeline (in another process) is ready
            t += 1.0
            for _ in range(20):
                executor.spin_once(timeout_sec=0.05)
        spin_until(executor, lambda: harness.received["geometry"], what="geometry from fm-navigate")
        estimate = harness.received["geometry"][0]
        assert estimate.success, estimate.failure_reason
        H = np.asarray(estimate.model).reshape(3, 3)
        assert corner_error(H, graf[2], graf[0].shape[1], graf[0].shape[0]) < 2.3
        assert harness.received["matches"][0].matcher == "xfeat(sparse)"
    finally:
        executor.shutdown()
        harness.destroy()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "matcher 'xfeat(sparse)' ready" in output


@pytest.mark.parametrize(
    "content, text",
    [
        (
            {"feature_matcher": {"ros__parameters": {"matchr": "orb"}}},
            "unknown parameters for 'feature_matcher': ['matchr']",
        ),
        (
            {"feature_matcher": {"ros__parameters": {"device": "gpu"}}},
            "device must be one of cpu, cuda, auto",
        ),
        ({"geometry": {"ros__parameters": {"model": "Affine"}}}, "model must be one of"),
        ({"geometry": {"ros__parameters": {"reproj_threshold": -1.0}}}, "reproj_threshold"),
    ],
)
def test_runner_refuses_bad_params(content, text, tmp_path):
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(content))
    result = subprocess.run(
        [_fm_navigate(), "--params", str(params_file)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert text in result.stderr


def test_runner_missing_params_file(tmp_path):
    result = subprocess.run(
        [_fm_navigate(), "--params", str(tmp_path / "nope.yaml")], env=_env(), capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "parameter file not found" in result.stderr
