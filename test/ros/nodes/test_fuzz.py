"""Fuzz over real DDS: malformed messages of every class a fault probe sent, into live nodes, each
followed by a good frame that must still be answered. One node lifetime per input transport.

Every bad message must give a diagnostics ERROR naming the problem (never "internal"), and the
nodes must go on answering as if it had never come.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from ..conftest import spin_until
from ..harness import FRAME_ID, camera_info, compressed_map_mode, stamp
from .test_fault_probe import compressed, jpeg_declaring, jpeg_frame, png_declaring
from .test_navigator_node import camera_info_of, flight, navigator  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ros

NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    name: str
    send: Callable[[float], None]  # publishes the bad input stamped t
    node: str  # the node that must report it
    text: str  # what its diagnostics ERROR must say


class Fuzzer:
    """Sends each case, waits for its ERROR, then checks that a good frame is still answered."""

    def __init__(self, harness, executor, nodes: dict, good: Callable[[float], None], answered: Callable):
        self.harness, self.executor = harness, executor
        self.nodes = {node.get_name(): node for node in nodes.values()}
        self.good, self.answered = good, answered
        self.t = 100.0

    def run(self, cases: list[Case]) -> None:
        for case in cases:
            node = self.nodes[case.node]
            before = sum(node.monitor.errors.values())
            self.t += 1.0
            case.send(self.t)
            spin_until(
                self.executor,
                lambda node=node, before=before: sum(node.monitor.errors.values()) > before,
                what=f"{case.node} to report {case.name}",
            )
            self.harness.received["/diagnostics"].clear()
            status = self.harness.wait_for_error(self.executor, case.node, case.text)
            assert not status.message.startswith("internal"), (case.name, status.message)
            self.t += 1.0
            self.good(self.t)
            self.answered(self.t, case.name)
        for name, node in self.nodes.items():
            assert node.monitor.errors["internal"] == 0, name


def _image(width: int, height: int, encoding: str, data: bytes, step: int, t: float, big_endian: int = 0):
    from sensor_msgs.msg import Image

    msg = Image(width=width, height=height, encoding=encoding, step=step, is_bigendian=big_endian)
    msg.data = data
    msg.header.stamp, msg.header.frame_id = stamp(t), FRAME_ID
    return msg


def _encodings(frame: np.ndarray) -> dict[str, np.ndarray]:
    """The frame in every grey encoding a camera may send (the map search must take them all)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    wide = grey.astype(np.uint16) * 64 + 1000  # a 14-bit sensor's range
    return {
        "mono8": grey,
        "8UC1": grey,
        "mono16": wide,
        "16UC1": wide,
        "32FC1": grey.astype(np.float32) / 255.0,
    }


@pytest.fixture
def map_scene(tmp_path):
    """A georeferenced map and a frame of it seen from 120 m (640x480, fx as the camera)."""
    from feature_matching_ros.core.simulation.aerial_texture import procedural_map, save_map
    from feature_matching_ros.core.simulation.flight_sim import (
        Appearance,
        CameraSpec,
        FlightPlan,
        fly,
        render,
    )

    geomap = procedural_map(1024, 1024, 0.5, seed=5)
    georef = dataclasses.replace(geomap.georef, geodetic_origin=(41.27, -81.75, 250.0))
    geomap = dataclasses.replace(geomap, georef=georef)
    camera = CameraSpec(640, 480, 60.0)
    plan = FlightPlan(np.array([[10.0, -20.0], [40.0, 10.0]]), altitude=120.0, tilt_deg=0.0, yaw=30.0)
    state = fly(plan, 1)[0]
    frame, _ = render(geomap, camera, state, Appearance(), np.random.default_rng(1))
    return str(save_map(geomap, tmp_path / "map.png")), frame, float(camera.K[0, 0]), float(state.position[2])


def test_fuzz_map_navigation_frontend_and_geometry(running, map_scene):
    from feature_matching_ros.msg import MatchArray
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Imu, NavSatFix, Range

    from feature_matching_ros.ros.conversions.images import array_to_image
    from feature_matching_ros.ros.conversions.messages import float32_array
    from feature_matching_ros.ros.infrastructure import topics

    map_path, frame, fx, height = map_scene
    harness, executor, nodes = running(
        matcher={
            "reference_mode": "map",
            "map_image": map_path,
            "matcher": "sift",
            "prior_input": "navsatfix",
            "attitude_input": "imu",
            "max_frame_pixels": 2_000_000,
        },
        geometry={"mode": "map", "map_image": map_path, "publish_debug": False},
    )
    spin_until(executor, lambda: nodes["matcher"].ready, timeout=120.0, what="the map's features")
    node = harness.node
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    range_pub = node.create_publisher(Range, topics.ALTITUDE, qos_profile_sensor_data)
    imu_pub = node.create_publisher(Imu, topics.ATTITUDE, qos_profile_sensor_data)
    fix_pub = node.create_publisher(PoseWithCovarianceStamped, topics.POSE, reliable)
    navsat_pub = node.create_publisher(NavSatFix, topics.PRIOR_FIX, qos_profile_sensor_data)
    publishers = (range_pub, imu_pub, fix_pub, navsat_pub)
    spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in publishers), what="aid inputs")
    h, w = frame.shape[:2]

    def altitude(value: float, t: float) -> None:
        msg = Range(range=value, min_range=0.0, max_range=0.0)
        msg.header.stamp = stamp(t)
        range_pub.publish(msg)

    def good(t: float, image: np.ndarray = frame, encoding: str = "rgb8") -> None:
        altitude(height, t)
        msg = array_to_image(np.ascontiguousarray(image), encoding)
        msg.header.stamp, msg.header.frame_id = stamp(t), FRAME_ID
        harness.publish_raw(msg, camera_info(w, h, msg.header.stamp, fx))

    def answered(t: float, after: str) -> None:
        key = stamp(t)
        spin_until(
            executor,
            lambda: any(m.header.stamp == key for m in harness.received["geometry"]),
            what=f"the good frame after {after} to be answered",
        )
        matches = next(m for m in harness.received["matches"] if m.header.stamp == key)
        assert len(matches.confidence) > 30, after

    def image(make) -> Callable[[float], None]:
        return lambda t: harness.publish_raw(make(t), camera_info(w, h, stamp(t), fx))

    def info(**changes) -> Callable[[float], None]:
        def send(t: float) -> None:
            msg = camera_info(w, h, stamp(t), fx)
            for name, value in changes.items():
                setattr(msg, name, value)
            image_msg = array_to_image(frame, "rgb8")
            image_msg.header.stamp, image_msg.header.frame_id = stamp(t), FRAME_ID
            harness.publish_raw(image_msg, msg)

        return send

    def focal(value: float) -> list[float]:
        return [value, 0.0, w / 2, 0.0, value, h / 2, 0.0, 0.0, 1.0]

    def fix(t: float, position=(0.0, 0.0, 100.0), covariance: float = 4.0) -> None:
        msg = PoseWithCovarianceStamped()
        msg.header.stamp, msg.header.frame_id = stamp(t), "map"
        p = msg.pose.pose.position
        p.x, p.y, p.z = position
        msg.pose.pose.orientation.w = 1.0
        msg.pose.covariance = np.diag(np.full(6, covariance)).reshape(36).tolist()
        fix_pub.publish(msg)

    def navsat(t: float) -> None:
        msg = NavSatFix(latitude=41.27, longitude=-81.75, altitude=350.0)
        msg.header.stamp = stamp(t)
        msg.position_covariance = [NAN, 0.0, 0.0, 0.0, NAN, 0.0, 0.0, 0.0, 4.0]
        navsat_pub.publish(msg)

    def imu(t: float) -> None:
        msg = Imu()
        msg.header.stamp = stamp(t)
        msg.orientation.x = msg.orientation.y = msg.orientation.z = msg.orientation.w = 0.0
        imu_pub.publish(msg)

    def matches(
        n: int, t: float, lengths: tuple[int, int, int] | None = None, bad: float = 0.0
    ) -> MatchArray:
        msg = MatchArray(query_width=w, query_height=h, reference_width=1024, reference_height=1024)
        msg.header.stamp = stamp(t)
        points = np.random.default_rng(0).uniform(0, 400, (n, 2))
        points[0, 0] += bad
        q, r, c = lengths or (2 * n, 2 * n, n)
        msg.query_points = float32_array(points.ravel()[:q])
        msg.reference_points = float32_array(points.ravel()[:r])
        msg.confidence = float32_array(np.ones(n)[:c])
        return msg

    rgb = frame.tobytes()
    cases = [
        Case(
            "an unknown encoding",
            image(lambda t: _image(w, h, "yuv_fancy", rgb, w * 3, t)),
            "feature_matcher",
            "unsupported image encoding 'yuv_fancy'",
        ),
        Case(
            "an empty encoding",
            image(lambda t: _image(w, h, "", rgb, w * 3, t)),
            "feature_matcher",
            "image encoding is empty",
        ),
        Case(
            "too little data",
            image(lambda t: _image(w, h, "rgb8", rgb[:1000], w * 3, t)),
            "feature_matcher",
            "image data has 1000 bytes",
        ),
        Case(
            "a step shorter than a row",
            image(lambda t: _image(w, h, "rgb8", rgb, w, t)),
            "feature_matcher",
            "is less than width * bytes per pixel",
        ),
        Case(
            "a zero-size image",
            image(lambda t: _image(0, 0, "rgb8", b"", 0, t)),
            "feature_matcher",
            "zero width or height",
        ),
        Case(
            "a 1x1 image",
            image(lambda t: _image(1, 1, "mono8", b"\0", 1, t)),
            "feature_matcher",
            "1x1 px: too small to match",
        ),
        Case(
            "a 2x2 image",
            image(lambda t: _image(2, 2, "mono8", bytes(4), 2, t)),
            "feature_matcher",
            "2x2 px: too small to match",
        ),
        Case(
            "a 65535x1 image",
            image(lambda t: _image(65535, 1, "mono8", bytes(65535), 65535, t)),
            "feature_matcher",
            "65535x1 px: too small to match",
        ),
        Case(
            "an image larger than max_frame_pixels",
            image(lambda t: _image(2000, 1200, "mono8", bytes(2_400_000), 2000, t)),
            "feature_matcher",
            "more than max_frame_pixels 2000000",
        ),
        Case(
            "a 32FC1 image without a finite pixel",
            image(lambda t: _image(w, h, "32FC1", np.full((h, w), NAN, np.float32).tobytes(), w * 4, t)),
            "feature_matcher",
            "no finite pixel",
        ),
        Case("a camera_info of another size", info(width=w * 2), "feature_matcher", "but the camera info"),
        Case("camera_info fx = 1e-300", info(k=focal(1e-300)), "geometry", "implausible"),
        Case("camera_info fx = 1e300", info(k=focal(1e300)), "geometry", "implausible"),
        Case("camera_info fx = 1e-6", info(k=focal(1e-6)), "geometry", "implausible"),
        Case("camera_info with NaN in K", info(k=[NAN] + focal(fx)[1:]), "feature_matcher", "non-finite"),
        Case("camera_info with an all-zero K", info(k=[0.0] * 9), "feature_matcher", "uncalibrated"),
        Case("camera_info with NaN distortion", info(d=[NAN] * 5), "feature_matcher", "D has non-finite"),
        Case(
            "camera_info stamped 1 s off",
            lambda t: [
                harness.publish_raw(
                    _image(w, h, "rgb8", rgb, w * 3, t + 0.1 * i), camera_info(w, h, stamp(t + 1.0), fx)
                )
                for i in range(3)
            ],
            "feature_matcher",
            "never pair",
        ),
        Case(
            "a fix with a NaN position",
            lambda t: fix(t, position=(NAN, 0.0, 100.0)),
            "feature_matcher",
            "non-finite position",
        ),
        Case(
            "a fix with an infinite covariance",
            lambda t: fix(t, covariance=INF),
            "feature_matcher",
            "non-finite covariance",
        ),
        Case(
            "a fix 1e-30 m above ground",
            lambda t: fix(t, position=(0.0, 0.0, 1e-30)),
            "feature_matcher",
            "1e-30 m is implausible",
        ),
        Case("a NavSatFix prior with a NaN covariance", navsat, "feature_matcher", "NavSatFix prior"),
        Case("an attitude of a zero quaternion", imu, "feature_matcher", "not a unit quaternion"),
        Case("an altitude of 1e-30 m", lambda t: altitude(1e-30, t), "feature_matcher", "implausible"),
        Case("an altitude of NaN", lambda t: altitude(NAN, t), "feature_matcher", "not a positive finite"),
        Case(
            "1,000,000 matches",
            lambda t: harness.matches_pub.publish(matches(1_000_000, t)),
            "geometry",
            "more than max_matches",
        ),
        Case(
            "matches of unequal lengths",
            lambda t: harness.matches_pub.publish(matches(50, t, (100, 98, 50))),
            "geometry",
            "reference_points has 98 values",
        ),
        Case(
            "NaN match coordinates",
            lambda t: harness.matches_pub.publish(matches(50, t, bad=NAN)),
            "geometry",
            "NaN or infinite",
        ),
    ]
    fuzzer = Fuzzer(harness, executor, nodes, good, answered)
    fuzzer.run(cases)
    # grey cameras, every encoding: answered with matches (a probe found map mode refused them all)
    for encoding, grey in _encodings(frame).items():
        fuzzer.t += 1.0
        good(fuzzer.t, grey, encoding)
        answered(fuzzer.t, f"a {encoding} frame")
    # big-endian 16-bit: byteswapped, not misread
    fuzzer.t += 1.0
    wide = _encodings(frame)["mono16"].astype(">u2")
    altitude(height, fuzzer.t)
    harness.publish_raw(
        _image(w, h, "mono16", wide.tobytes(), w * 2, fuzzer.t, big_endian=1),
        camera_info(w, h, stamp(fuzzer.t), fx),
    )
    answered(fuzzer.t, "a big-endian mono16 frame")


def test_fuzz_compressed_frames(running, graf, shared_data):
    from ...conftest import require_file

    graf_map = str(require_file(shared_data / "pairs" / "graf1.png"))
    harness, executor, nodes = running(matcher=compressed_map_mode(graf_map))
    bgr = cv2.cvtColor(graf[1], cv2.COLOR_RGB2BGR)
    png = cv2.imencode(".png", bgr)[1].tobytes()
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()

    def send(data: bytes, fmt: str) -> Callable[[float], None]:
        return lambda t: harness.publish_raw(compressed(data, fmt, t), None)

    def answered(t: float, after: str) -> None:
        key = stamp(t)
        spin_until(
            executor,
            lambda: any(m.header.stamp == key for m in harness.received["matches"]),
            what=f"the good frame after {after} to be answered",
        )
        assert len(next(m for m in harness.received["matches"] if m.header.stamp == key).confidence) > 50

    truncated = png[: len(png) // 3]
    one_pixel = cv2.imencode(".png", np.zeros((1, 1), np.uint8))[1].tobytes()
    matcher = "feature_matcher"
    cases = [
        Case("no data", send(b"", "jpeg"), matcher, "has no data"),
        Case(
            "a corrupt jpeg", send(b"\xff\xd8\xff\xe0 this is not a jpeg", "jpeg"), matcher, "cannot decode"
        ),
        Case("a truncated png", send(truncated, "png"), matcher, "cannot decode"),
        Case("png data labelled jpeg", send(png, "jpeg"), matcher, "does not start with the jpeg signature"),
        Case("an unknown format", send(jpeg, "webp"), matcher, "unsupported CompressedImage format"),
        Case("two codecs", send(jpeg, "jpeg png"), matcher, "more than one codec"),
        Case("compressedDepth", send(png, "16UC1; compressedDepth png"), matcher, "compressedDepth"),
        Case(
            "neither jpeg nor png, unlabelled",
            send(b"GIF89a" + bytes(100), ""),
            matcher,
            "neither jpeg nor png",
        ),
        Case(
            "a png declaring 30000x30000",
            send(png_declaring(30000, 30000), "png"),
            matcher,
            "header declares 30000x30000 px",
        ),
        Case(
            "a jpeg declaring 30000x30000",
            send(jpeg_declaring(bgr[:64, :64], 30000, 30000), "jpeg"),
            matcher,
            "header declares 30000x30000 px",
        ),
        Case(
            "a jpeg declaring 65535x1",
            send(jpeg_declaring(bgr[:64, :64], 65535, 1), "jpeg"),
            matcher,
            "65535x1 px: too small",
        ),
        Case("a 1x1 png", send(one_pixel, "png"), matcher, "1x1 px: too small"),
    ]
    fuzzer = Fuzzer(
        harness, executor, nodes, lambda t: harness.publish_raw(jpeg_frame(graf[1], t), None), answered
    )
    fuzzer.run(cases)
    # a 16-bit PNG (thermal cameras) and image_transport's format string are answered
    wide = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 50 + 3000
    fuzzer.t += 1.0
    harness.publish_raw(
        compressed(cv2.imencode(".png", wide)[1].tobytes(), "mono16; png compressed mono16", fuzzer.t), None
    )
    answered(fuzzer.t, "a 16-bit png")


def test_fuzz_navigator(navigator):  # noqa: F811 (the fixture imported above)
    from sensor_msgs.msg import Imu, Range

    node, pilot, executor, frames = navigator
    frame = frames[0]
    h, w = frame.image.shape[:2]
    rgb = np.ascontiguousarray(frame.image).tobytes()

    def image(make, info=None) -> Callable[[float], None]:
        def send(t: float) -> None:
            pilot.harness.info_pub.publish(info(t) if info else camera_info_of(frame, stamp(t)))
            pilot.harness.image_pub.publish(make(t))

        return send

    def focal(value: float) -> Callable[[float], object]:
        K = np.asarray(frame.K, np.float64).copy()
        K[0, 0] = K[1, 1] = value
        return lambda t: camera_info_of(frame, stamp(t), K)

    def altitude(value: float) -> Callable[[float], None]:
        def send(t: float) -> None:
            msg = Range(range=value, min_range=0.0, max_range=0.0)
            msg.header.stamp = stamp(t)
            pilot.range_pub.publish(msg)

        return send

    def attitude(t: float) -> None:
        msg = Imu()
        msg.header.stamp = stamp(t)
        msg.orientation.w = float("nan")
        pilot.imu_pub.publish(msg)

    def alone(t: float) -> None:  # images without camera_info
        for i in range(3):
            pilot.harness.image_pub.publish(_image(w, h, "rgb8", rgb, w * 3, t + 0.1 * i))

    def answered(t: float, after: str) -> None:
        status, pose, _, _ = pilot.answer(executor, t)
        assert status.pose_published, (after, status.pose_status)

    name = "navigator"
    cases = [
        Case(
            "an unknown encoding",
            image(lambda t: _image(w, h, "yuv_fancy", rgb, w * 3, t)),
            name,
            "unsupported image encoding",
        ),
        Case("a 1x1 image", image(lambda t: _image(1, 1, "mono8", b"\0", 1, t)), name, "1x1 px: too small"),
        Case(
            "a 65535x1 image",
            image(lambda t: _image(65535, 1, "mono8", bytes(65535), 65535, t)),
            name,
            "65535x1 px: too small",
        ),
        Case(
            "camera_info fx = 1e-300",
            image(lambda t: _image(w, h, "rgb8", rgb, w * 3, t), focal(1e-300)),
            name,
            "implausible",
        ),
        Case("images without camera_info", alone, name, "never pair"),
        Case("an altitude of 1e-30 m", altitude(1e-30), name, "1e-30 m is implausible"),
        Case("an attitude with a NaN quaternion", attitude, name, "not a unit quaternion"),
    ]
    Fuzzer(pilot.harness, executor, {name: node}, lambda t: pilot.publish(frame, t), answered).run(cases)


def test_navigator_navigates_a_4000x3000_frame_at_max_image_edge(navigator):  # noqa: F811
    node, pilot, executor, frames = navigator
    assert node.get_parameter("max_image_edge").value == 1024
    frame = frames[0]
    scale = 4000 / frame.image.shape[1]
    K = np.asarray(frame.K, np.float64).copy()
    K[:2] *= scale
    large = dataclasses.replace(
        frame, image=cv2.resize(frame.image, (4000, 3000), interpolation=cv2.INTER_LINEAR), K=K
    )
    status, pose, _, _ = pilot.answer_to(executor, large, frame.stamp)
    assert status.pose_published, status.pose_status
    p = pose.pose.pose.position
    assert np.linalg.norm(np.array([p.x, p.y]) - frame.truth_position[:2]) < 3.0
