"""Every kind of bad input: a diagnostics ERROR naming the problem, the input dropped, and the node
still processing the next good message."""

from __future__ import annotations

import numpy as np
import pytest

from ...conftest import require_file
from ..harness import camera_info, compressed_map_mode, stamp

pytestmark = pytest.mark.ros

MATCHER = "feature_matcher"


@pytest.fixture
def graf_map(shared_data):
    return str(require_file(shared_data / "pairs" / "graf1.png"))


def _image(width: int, height: int, encoding: str, data: bytes, t: float):
    from sensor_msgs.msg import Image

    msg = Image(width=width, height=height, encoding=encoding, step=width * 3)
    msg.data = data
    msg.header.stamp = stamp(t)
    msg.header.frame_id = "camera_optical"
    return msg


def _good_frame_still_matched(harness, executor, frame: np.ndarray, t: float) -> None:
    before = len(harness.received["matches"])
    harness.publish_frame(frame, t)
    harness.wait_for(executor, "matches", before + 1, what="matches for a good frame after the bad input")
    assert harness.received["matches"][-1].header.stamp.sec == int(t)


BAD_IMAGES = {
    "unknown encoding": (lambda t: _image(64, 48, "yuv_fancy", bytes(64 * 48 * 3), t), "yuv_fancy"),
    "data length": (lambda t: _image(64, 48, "rgb8", bytes(100), t), "100"),
    "zero size": (lambda t: _image(0, 0, "rgb8", b"", t), "zero"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image(case, running, graf, graf_map):
    make, text = BAD_IMAGES[case]
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": graf_map, "matcher": "orb"}
    )
    bad = make(3.0)
    harness.publish_raw(bad, camera_info(max(bad.width, 1), max(bad.height, 1), bad.header.stamp))
    status = harness.wait_for_error(executor, MATCHER, text)
    assert status.message.startswith("bad image:")
    assert harness.received["matches"] == []
    _good_frame_still_matched(harness, executor, graf[1], 4.0)
    assert nodes["matcher"].monitor.errors["bad image"] == 1


def test_corrupt_compressed_image(running, graf, graf_map):
    from sensor_msgs.msg import CompressedImage

    harness, executor, nodes = running(matcher=compressed_map_mode(graf_map))
    bad = CompressedImage(format="jpeg")
    bad.data = b"\xff\xd8\xff\xe0 this is not a jpeg"
    bad.header.stamp = stamp(5.0)
    harness.publish_raw(bad, None)
    harness.wait_for_error(executor, MATCHER, "bad image")
    import cv2

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(graf[1], cv2.COLOR_RGB2BGR))
    good = CompressedImage(format="jpeg")
    good.data = jpeg.tobytes()
    good.header.stamp = stamp(6.0)
    harness.publish_raw(good, None)
    matches = harness.wait_for(executor, "matches", 1)
    assert matches.header.stamp.sec == 6 and len(matches.confidence) > 50


@pytest.mark.parametrize("defect", ["zero intrinsics", "nan intrinsics"])
def test_bad_camera_info(defect, running, graf, graf_map):
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": graf_map, "matcher": "orb"}, geometry={}
    )
    from feature_matching_ros.ros.conversions.images import array_to_image

    image = array_to_image(graf[1], "rgb8")
    image.header.stamp = stamp(7.0)
    info = camera_info(image.width, image.height, image.header.stamp)
    info.k = [0.0] * 9 if defect == "zero intrinsics" else [float("nan")] + list(info.k[1:])
    harness.publish_raw(image, info)
    harness.wait_for_error(executor, MATCHER, "K")
    harness.wait_for_error(executor, "geometry", "bad camera_info")
    assert harness.received["matches"] == []
    _good_frame_still_matched(harness, executor, graf[1], 8.0)
    harness.wait_for(executor, "geometry", 1)


@pytest.mark.parametrize(
    "field, values, text",
    [
        ("confidence", [0.5], "confidence has 1 values for 3 matches"),
        ("reference_points", [1.0, 2.0], "reference_points has 2 values but query_points has 6"),
        ("query_points", [1.0, 2.0, 3.0], "odd length 3"),
    ],
)
def test_inconsistent_match_array(field, values, text, running):
    from feature_matching_ros.msg import MatchArray

    harness, executor, nodes = running(geometry={})
    rng = np.random.default_rng(0)
    msg = MatchArray(query_width=640, query_height=480, reference_width=640, reference_height=480)
    msg.query_points = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    msg.reference_points = [11.0, 21.0, 31.0, 41.0, 51.0, 61.0]
    msg.confidence = [1.0, 1.0, 1.0]
    setattr(msg, field, values)
    harness.matches_pub.publish(msg)
    harness.wait_for_error(executor, "geometry", text)
    assert harness.received["geometry"] == []

    good = MatchArray(query_width=640, query_height=480, reference_width=640, reference_height=480)
    ref = rng.uniform(0, 600, (100, 2))
    good.reference_points = ref.ravel().tolist()
    good.query_points = (ref + [5.0, -3.0]).ravel().tolist()
    good.confidence = [1.0] * 100
    harness.matches_pub.publish(good)
    estimate = harness.wait_for(executor, "geometry", 1)
    assert estimate.success and estimate.num_inliers == 100
    np.testing.assert_allclose(
        np.asarray(estimate.model).reshape(3, 3), [[1, 0, 5], [0, 1, -3], [0, 0, 1]], atol=1e-4
    )


def test_missing_map_then_fixed_at_run_time(running, graf, graf_map, tmp_path):
    from rclpy.parameter import Parameter

    missing = tmp_path / "no_such_map.png"
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": str(missing), "matcher": "orb"}
    )
    harness.publish_frame(graf[1], 1.0)
    harness.wait_for_error(executor, MATCHER, "image file not found")
    unreadable = tmp_path / "map.png"
    unreadable.write_bytes(b"not a png at all")
    node = nodes["matcher"]
    refused = node.set_parameters([Parameter("map_image", value=str(unreadable))])[0]
    assert not refused.successful and refused.reason.endswith("not an image file OpenCV can read")
    assert harness.received["matches"] == []
    assert node.set_parameters([Parameter("map_image", value=graf_map)])[0].successful
    _good_frame_still_matched(harness, executor, graf[1], 3.0)


def test_missing_weights_then_fixed_at_run_time(running, graf, graf_map, tmp_path, monkeypatch):
    from rclpy.parameter import Parameter

    from feature_matching_ros.core.matching import weights

    real_cache = weights.cache_dir()
    if not weights.status("xfeat").available:
        pytest.fail("the xfeat weights are needed for this test: run `fm-weights fetch xfeat`")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
    harness, executor, nodes = running(
        matcher={"reference_mode": "map", "map_image": graf_map, "matcher": "xfeat(sparse)"}
    )
    harness.publish_frame(graf[1], 1.0)
    status = harness.wait_for_error(executor, MATCHER, "weights missing: xfeat")
    assert "fm-weights fetch xfeat" in status.message
    assert harness.received["matches"] == []
    assert nodes["matcher"].set_parameters([Parameter("weights_dir", value=str(real_cache))])[0].successful
    _good_frame_still_matched(harness, executor, graf[1], 2.0)
    assert harness.received["matches"][-1].matcher == "xfeat(sparse)"
