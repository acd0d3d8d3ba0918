"""A rosbag2 written here with rosbags (real flight frames), replayed with /clock into both nodes
running on sim time: frames are matched in order (a frame that arrives while the matcher is busy
with an older one may be dropped, and is counted), and the nodes' clocks follow the bag."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from ..conftest import spin_until
from ..nodes.test_nodes import seneca_frames

pytestmark = pytest.mark.ros

T0 = 1_370_354_400 * 10**9  # 2013-06-04, the Seneca flight's day, in ns
SPACING = 10**9 // 2
FX = 557.5


def write_flight_bag(path: Path, frames: list[np.ndarray], storage: str) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    t = store.types

    def header(ns: int) -> object:
        stamp = t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        return t["std_msgs/msg/Header"](stamp=stamp, frame_id="camera_optical")

    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
        image_conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        info_conn = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store
        )
        for i, frame in enumerate(frames):
            ns = T0 + i * SPACING
            h, w = frame.shape[:2]
            k = np.array([FX, 0, w / 2, 0, FX, h / 2, 0, 0, 1])
            p = np.array([FX, 0, w / 2, 0, 0, FX, h / 2, 0, 0, 0, 1, 0])
            roi = t["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
            info = t["sensor_msgs/msg/CameraInfo"](
                header(ns), h, w, "plumb_bob", np.zeros(5), k, np.eye(3).reshape(-1), p, 0, 0, roi
            )
            image = t["sensor_msgs/msg/Image"](header(ns), h, w, "rgb8", 0, w * 3, frame.reshape(-1))
            writer.write(info_conn, ns, bytes(store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo")))
            writer.write(image_conn, ns, bytes(store.serialize_cdr(image, "sensor_msgs/msg/Image")))
    return path


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replayed_flight_through_the_pipeline(storage, running, ros_context, shared_data, tmp_path):
    import rclpy

    from feature_matching_ros.ros.bags.player import BagPlayer

    frames = seneca_frames(shared_data, 4)
    bag = write_flight_bag(tmp_path / "flight", frames, storage)
    harness, executor, nodes = running(
        matcher={"reference_mode": "keyframe", "matcher": "xfeat(sparse)", "use_sim_time": True},
        geometry={"use_sim_time": True},
    )
    spin_until(executor, lambda: nodes["matcher"].ready, what="the matcher to be built")
    player_node = rclpy.create_node("fm_test_player", context=ros_context)
    try:
        with BagPlayer(player_node, bag, qos="best-effort") as player:
            assert not player.wait_for_subscribers(10.0)
            result: list = []

            def play() -> None:
                try:
                    result.append(player.play(rate=0.5))
                except Exception as exc:  # reported below, in the test's thread
                    result.append(exc)

            thread = threading.Thread(target=play)
            thread.start()
            spin_until(executor, lambda: not thread.is_alive(), what="the end of the playback")
            thread.join()
        node = nodes["matcher"]
        spin_until(
            executor,
            lambda: node.monitor.received == len(frames) and node.worker.idle(),
            what="every frame received and the matcher idle",
        )
        matched = node.monitor.processed - 1  # the first frame becomes the keyframe
        harness.wait_for(executor, "matches", matched, what="the matches of every processed frame")
        harness.wait_for(executor, "geometry", matched, what="geometry for every match")
    finally:
        player_node.destroy_node()
    stats = result[0]
    assert not isinstance(stats, Exception), f"playback failed: {stats!r}"
    assert stats.published["/camera/image_raw"] == len(frames)
    monitor = node.monitor
    assert monitor.received == len(frames)
    assert monitor.processed + monitor.dropped == len(frames)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in harness.received["matches"]]
    expected = [T0 + i * SPACING for i in range(len(frames))]
    assert len(stamps) >= 1 and stamps == sorted(stamps) and set(stamps) <= set(expected[1:])
    assert stamps[-1] == expected[-1]  # the newest frame is never dropped
    assert [g.header.stamp for g in harness.received["geometry"]] == [
        m.header.stamp for m in harness.received["matches"]
    ]
    # The nodes run on the bag's clock: their diagnostics are stamped in 2013, not now; those
    # published (on the steady timer) before the first /clock carry time zero.
    spin_until(executor, lambda: harness.diagnostics("feature_matcher"), what="diagnostics")
    stamps = [a.header.stamp.sec for a in harness.received["/diagnostics"]]
    on_bag_clock = [s for s in stamps if s != 0]
    assert on_bag_clock and all(T0 // 10**9 <= s <= T0 // 10**9 + 10 for s in on_bag_clock), stamps
