"""BagPlayer and BagRecorder over real rclpy and DDS, with bags written and read by rosbags."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from .conftest import spin_until

pytestmark = pytest.mark.ros

T0 = 1_700_000_000 * 10**9  # bag start, ns
SECOND = 10**9
IMAGE_TOPIC, INFO_TOPIC, TEXT_TOPIC = "/camera/image_raw", "/camera/camera_info", "/chatter"
STORE = get_typestore(Stores.ROS2_KILTED)


def offer(reliability: QosReliability, durability: QosDurability = QosDurability.VOLATILE) -> Qos:
    never = QosTime(9223372036, 854775807)
    return Qos(QosHistory.KEEP_LAST, 5, reliability, durability, never, never, QosLiveliness.AUTOMATIC, never, False)


RELIABLE = offer(QosReliability.RELIABLE)


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> list[np.ndarray]:
    """The first five Seneca flight images, BGR, downscaled to 200x150."""
    paths = sorted((shared_data / "flights/seneca/images").glob("*.jpg"))[:5]
    assert len(paths) == 5
    return [cv2.resize(cv2.imread(str(p)), (200, 150), interpolation=cv2.INTER_AREA) for p in paths]


def header(stamp_ns: int, frame_id: str = "camera_optical") -> object:
    stamp = STORE.types["builtin_interfaces/msg/Time"](sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND)
    return STORE.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def bag_messages(frames: list[np.ndarray]) -> list[tuple[str, str, int, bytes]]:
    """(topic, type, timestamp, CDR bytes): five frames 0.5 s apart, a CameraInfo, two Strings; 2 s long."""
    types = STORE.types
    messages = []
    for i, frame in enumerate(frames):
        stamp = T0 + i * SECOND // 2
        image = types["sensor_msgs/msg/Image"](
            header=header(stamp), height=150, width=200, encoding="bgr8", is_bigendian=0, step=600,
            data=frame.reshape(-1),
        )  # fmt: skip
        messages.append((IMAGE_TOPIC, "sensor_msgs/msg/Image", stamp, image))
    info = types["sensor_msgs/msg/CameraInfo"](
        header=header(T0 + SECOND // 4), height=150, width=200, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([150.0, 0, 100, 0, 150, 75, 0, 0, 1]), r=np.eye(3).reshape(-1),
        p=np.array([150.0, 0, 100, 0, 0, 150, 75, 0, 0, 0, 1, 0]), binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )  # fmt: skip
    messages.append((INFO_TOPIC, "sensor_msgs/msg/CameraInfo", T0 + SECOND // 4, info))
    for stamp, text in ((T0 + 5 * SECOND // 4, "hello"), (T0 + 7 * SECOND // 4, "bag")):
        messages.append((TEXT_TOPIC, "std_msgs/msg/String", stamp, types["std_msgs/msg/String"](data=text)))
    messages.sort(key=lambda m: m[2])
    return [(topic, kind, stamp, bytes(STORE.serialize_cdr(msg, kind))) for topic, kind, stamp, msg in messages]


def write_bag(path: Path, storage: str, messages: list[tuple[str, str, int, bytes]], offers: dict) -> Path:
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
        connections = {}
        for topic, kind, _, _ in messages:
            if topic not in connections:
                qos = offers.get(topic, [RELIABLE])
                connections[topic] = writer.add_connection(topic, kind, typestore=STORE, offered_qos_profiles=qos)
        for topic, _, stamp, data in messages:
            writer.write(connections[topic], stamp, data)
    return path


class Sink:
    """A node collecting raw messages (with their source timestamps) and /clock."""

    def __init__(self, context: object, topics: dict[str, type]) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile
        from rosgraph_msgs.msg import Clock

        self.node = rclpy.create_node("bag_sink", context=context)
        self.received: list[tuple[int, str, bytes]] = []
        self.clock: list[int] = []
        qos = QoSProfile(depth=100)
        self.subscriptions = [
            self.node.create_subscription(kind, topic, self._collector(topic), qos, raw=True)
            for topic, kind in topics.items()
        ]
        self.clock_sub = self.node.create_subscription(
            Clock, "/clock", lambda m: self.clock.append(m.clock.sec * SECOND + m.clock.nanosec), 1000
        )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _collector(self, topic: str) -> object:
        return lambda data, info: self.received.append((info["source_timestamp"], topic, data))

    def wait_matched(self) -> None:
        subscriptions = [*self.subscriptions, self.clock_sub]
        spin_until(self.executor, lambda: all(s.get_publisher_count() > 0 for s in subscriptions), what="match")


def play_in_thread(player: object, **kwargs: object) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(player.play(**kwargs)))
    thread.start()
    return thread, result


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replay_publishes_every_message_in_order_with_clock(ros_context, tmp_path, frames, storage):
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    from feature_matching_ros.ros.bag import BagPlayer

    messages = bag_messages(frames)
    bag = write_bag(tmp_path / "bag", storage, messages, {})
    sink = Sink(ros_context, {IMAGE_TOPIC: Image, INFO_TOPIC: CameraInfo, TEXT_TOPIC: String})
    with BagPlayer(rclpy.create_node("player", context=ros_context), bag) as player:
        assert player.skipped == {}
        assert player.wait_for_subscribers(10.0) == []
        sink.wait_matched()
        began = time.perf_counter()
        thread, result = play_in_thread(player, rate=5.0)
        spin_until(sink.executor, lambda: len(sink.received) == len(messages) and not thread.is_alive())
        elapsed = time.perf_counter() - began
        spin_until(sink.executor, lambda: sink.clock and sink.clock[-1] == T0 + 2 * SECOND, what="the last /clock")
    stats = result[0]
    assert [(topic, data) for _, topic, data in sorted(sink.received)] == [(t, d) for t, _, _, d in messages]
    assert stats.published == {IMAGE_TOPIC: 5, INFO_TOPIC: 1, TEXT_TOPIC: 2} and stats.loops == 1
    assert not stats.interrupted and stats.bag_s == pytest.approx(2.0)
    assert 0.3 < elapsed < 10 and 0.3 < stats.wall_s < 10 and stats.achieved_rate > 0.2
    assert sink.clock[0] == T0 and sink.clock == sorted(sink.clock) and len(sink.clock) >= 10
    assert stats.clock_messages >= len(sink.clock)


def test_replay_topics_remap_offset_and_recorded_qos(ros_context, tmp_path, frames):
    import rclpy
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
    from std_msgs.msg import String

    from feature_matching_ros.ros.bag import BagPlayer

    offers = {
        IMAGE_TOPIC: [offer(QosReliability.BEST_EFFORT)],
        TEXT_TOPIC: [offer(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL)],
        INFO_TOPIC: [],  # nothing recorded: reliable, depth 10
    }
    bag = write_bag(tmp_path / "bag", "sqlite3", bag_messages(frames), offers)
    node = rclpy.create_node("player", context=ros_context)
    with BagPlayer(node, bag, qos="recorded") as player:
        qos = {topic: p.qos_profile for topic, p in player.publishers.items()}
    assert qos[IMAGE_TOPIC].reliability == ReliabilityPolicy.BEST_EFFORT and qos[IMAGE_TOPIC].depth == 5
    assert qos[TEXT_TOPIC].durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos[INFO_TOPIC].reliability == ReliabilityPolicy.RELIABLE and qos[INFO_TOPIC].depth == 10
    with BagPlayer(node, bag, qos="reliable") as player:
        assert player.publishers[IMAGE_TOPIC].qos_profile.reliability == ReliabilityPolicy.RELIABLE

    sink = Sink(ros_context, {"/talk": String})
    with BagPlayer(node, bag, topics=["chatter", "/missing"], remap={"/chatter": "talk"}) as player:
        assert set(player.publishers) == {TEXT_TOPIC} and player.skipped == {"/missing": "not in the bag"}
        sink.wait_matched()
        thread, result = play_in_thread(player, rate=4.0, start_offset=1.5)
        spin_until(sink.executor, lambda: sink.received and not thread.is_alive(), what="the remapped topic")
        spin_until(sink.executor, lambda: sink.clock and sink.clock[-1] == T0 + 7 * SECOND // 4)
    last_text = [data for topic, _, stamp, data in bag_messages(frames) if topic == TEXT_TOPIC][-1]
    assert [data for _, _, data in sink.received] == [last_text]
    assert result[0].published == {"/talk": 1} and sink.clock[0] == T0 + 3 * SECOND // 2


def test_replay_skips_unimportable_types_and_stop_ends_a_loop(ros_context, tmp_path, frames):
    import rclpy

    from feature_matching_ros.ros.bag import BagError, BagPlayer

    path = tmp_path / "bag"
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        alien = writer.add_connection("/alien", "alien_msgs/msg/Thing", msgdef="int32 x", rihs01="RIHS01_" + "0" * 64)
        text = writer.add_connection(TEXT_TOPIC, "std_msgs/msg/String", typestore=STORE)
        for i in range(3):
            writer.write(alien, T0 + i * SECOND // 10, b"\x00\x01\x00\x00\x07\x00\x00\x00")
            writer.write(text, T0 + i * SECOND // 10, bytes(STORE.serialize_cdr(STORE.types["std_msgs/msg/String"](data=str(i)), "std_msgs/msg/String")))  # noqa: E501
    node = rclpy.create_node("player", context=ros_context)
    with BagPlayer(node, path) as player:
        assert set(player.publishers) == {TEXT_TOPIC}
        assert "alien_msgs/msg/Thing" in player.skipped["/alien"] and "not importable" in player.skipped["/alien"]
        stop = threading.Event()
        thread, result = play_in_thread(player, rate=1.0, loop=True, stop=stop)
        time.sleep(0.6)
        stop.set()
        thread.join(5.0)
    stats = result[0]
    assert stats.interrupted and stats.loops >= 2 and stats.published[TEXT_TOPIC] >= 6
    with pytest.raises(BagError, match="no playable topic"):
        BagPlayer(node, path, topics=["/alien"])
    with pytest.raises(BagError, match="cannot read bag"):
        BagPlayer(node, tmp_path / "absent")


def test_qos_from_offers_follows_rosbag2():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from feature_matching_ros.ros.bag import qos_from_offers

    mixed = qos_from_offers([offer(QosReliability.BEST_EFFORT), RELIABLE])
    assert mixed.reliability == ReliabilityPolicy.RELIABLE and mixed.durability == DurabilityPolicy.VOLATILE
    assert qos_from_offers([offer(QosReliability.BEST_EFFORT)]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_from_offers([]) is None


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_record_stores_what_was_published(ros_context, tmp_path, frames, storage):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from feature_matching_ros.msg import MatchArray
    from feature_matching_ros.ros.bag import BagRecorder, typestore_for

    source = rclpy.create_node("source", context=ros_context)
    image_pub = source.create_publisher(Image, "camera/image_raw", 10)
    match_pub = source.create_publisher(MatchArray, "matches", 10)
    source.create_publisher(Image, "lossy", qos_profile_sensor_data)
    sent = []
    for i, frame in enumerate(frames[:3]):
        image = Image(height=150, width=200, encoding="bgr8", step=600, data=frame.tobytes())
        image.header.stamp.sec, image.header.frame_id = 100 + i, "camera_optical"
        points = np.arange(8, dtype=np.float32) + i
        match = MatchArray(
            reference_id=f"tile_{i}", matcher="xfeat+lightglue", query_width=200, query_height=150,
            query_points=points.tolist(), reference_points=(points * 2).tolist(), confidence=[0.5, 0.25, 1.0, 0.0],
            num_keypoints_query=40, num_keypoints_reference=41, total_ms=12.5,
        )  # fmt: skip
        match.header = image.header
        sent += [("/camera/image_raw", image), ("/matches", match)]

    out = tmp_path / "recorded"
    recorder = BagRecorder(rclpy.create_node("rec", context=ros_context), out, ["camera/image_raw", "matches", "lossy"], storage=storage)  # noqa: E501
    with recorder:
        recorder.start(timeout=10.0)
        lossy = recorder.node.get_subscriptions_info_by_topic("/lossy")[0].qos_profile
        assert lossy.reliability.name == "BEST_EFFORT"
        spin_until(source_executor(source), lambda: min(image_pub.get_subscription_count(), match_pub.get_subscription_count()) > 0)  # noqa: E501
        result = []
        thread = threading.Thread(target=lambda: result.append(recorder.record(max_messages=len(sent), duration=20)))
        thread.start()
        for topic, msg in sent:
            (image_pub if topic == "/camera/image_raw" else match_pub).publish(msg)
            time.sleep(0.02)
        thread.join(25)
    assert result[0].written == {"/camera/image_raw": 3, "/matches": 3, "/lossy": 0}

    store = typestore_for(["feature_matching_ros/msg/MatchArray"])
    with Reader(out) as reader:
        kinds = {c.topic: c.msgtype for c in reader.connections}
        assert kinds["/matches"] == "feature_matching_ros/msg/MatchArray"
        offered = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
        assert offered["/matches"][0].reliability == QosReliability.RELIABLE
        assert offered["/lossy"][0].reliability == QosReliability.BEST_EFFORT
        digests = {c.topic: c.digest for c in reader.connections}
        assert digests["/matches"] == str(source.get_publishers_info_by_topic("/matches")[0].topic_type_hash)
        stored = [(c.topic, stamp, data) for c, stamp, data in reader.messages()]
    for topic in ("/camera/image_raw", "/matches"):
        mine = [m for t, m in sent if t == topic]
        theirs = [(stamp, data) for t, stamp, data in stored if t == topic]
        # rclpy's serialize_message leaves its alignment padding uninitialised, so compare the contents
        assert [deserialize_message(data, type(m)) for m, (_, data) in zip(mine, theirs, strict=True)] == mine
        assert [stamp for stamp, _ in theirs] == sorted(stamp for stamp, _ in theirs)
        for msg, (_, data) in zip(mine, theirs, strict=True):
            back = store.deserialize_cdr(data, kinds[topic])
            assert back.header.stamp.sec == msg.header.stamp.sec and back.header.frame_id == msg.header.frame_id
            if topic == "/matches":
                assert back.reference_id == msg.reference_id and back.matcher == msg.matcher
                np.testing.assert_array_equal(back.query_points, np.asarray(msg.query_points))
                np.testing.assert_array_equal(back.confidence, np.asarray(msg.confidence))
                assert (back.num_keypoints_reference, back.total_ms) == (41, 12.5)
            else:
                assert (back.width, back.height, back.encoding) == (200, 150, "bgr8")
                assert back.data.tobytes() == bytes(msg.data)
            assert bytes(store.serialize_cdr(back, kinds[topic])) == data  # zero padding on the wire, as rosbags


def source_executor(node: object) -> object:
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    return executor


def test_recorder_names_missing_topics_and_refuses_existing_paths(ros_context, tmp_path):
    import rclpy

    from feature_matching_ros.ros.bag import BagError, BagRecorder

    node = rclpy.create_node("rec", context=ros_context)
    with pytest.raises(BagError, match="no publisher after 0.3 s on: /nobody_here"):
        BagRecorder(node, tmp_path / "out", ["/nobody_here"]).start(timeout=0.3)
    assert not (tmp_path / "out").exists()
    with pytest.raises(BagError, match="exists already"):
        BagRecorder(node, tmp_path, ["/x"])
