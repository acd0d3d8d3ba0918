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

from ..conftest import spin_until

pytestmark = pytest.mark.ros

T0 = 1_700_000_000 * 10**9  # bag start, ns
SECOND = 10**9
IMAGE_TOPIC, INFO_TOPIC, TEXT_TOPIC = "/camera/image_raw", "/camera/camera_info", "/chatter"
STORE = get_typestore(Stores.ROS2_KILTED)
NO_HASH = "RIHS01_" + "0" * 64


def offer(reliability: QosReliability, durability: QosDurability = QosDurability.VOLATILE) -> Qos:
    never = QosTime(9223372036, 854775807)
    return Qos(
        QosHistory.KEEP_LAST, 5, reliability, durability, never, never, QosLiveliness.AUTOMATIC, never, False
    )


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
        image = types["sensor_msgs/msg/Image"](header(stamp), 150, 200, "bgr8", 0, 600, frame.reshape(-1))
        messages.append((IMAGE_TOPIC, "sensor_msgs/msg/Image", stamp, image))
    k = np.array([150.0, 0, 100, 0, 150, 75, 0, 0, 1])
    p = np.array([150.0, 0, 100, 0, 0, 150, 75, 0, 0, 0, 1, 0])
    roi = types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
    stamp = T0 + SECOND // 4
    info = types["sensor_msgs/msg/CameraInfo"](
        header(stamp), 150, 200, "plumb_bob", np.zeros(5), k, np.eye(3).reshape(-1), p, 0, 0, roi
    )
    messages.append((INFO_TOPIC, "sensor_msgs/msg/CameraInfo", stamp, info))
    for stamp, text in ((T0 + 5 * SECOND // 4, "hello"), (T0 + 7 * SECOND // 4, "bag")):
        messages.append((TEXT_TOPIC, "std_msgs/msg/String", stamp, types["std_msgs/msg/String"](data=text)))
    messages.sort(key=lambda m: m[2])
    return [(topic, kind, t, bytes(STORE.serialize_cdr(msg, kind))) for topic, kind, t, msg in messages]


def write_bag(path: Path, storage: str, messages: list[tuple[str, str, int, bytes]], offers: dict) -> Path:
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin) as writer:
        connections = {}
        for topic, kind, _, _ in messages:
            if topic not in connections:
                qos = offers.get(topic, [RELIABLE])
                connections[topic] = writer.add_connection(
                    topic, kind, typestore=STORE, offered_qos_profiles=qos
                )
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
        spin_until(
            self.executor, lambda: all(s.get_publisher_count() > 0 for s in subscriptions), what="match"
        )


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

    from feature_matching_ros.ros.bags.player import BagPlayer

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
        spin_until(
            sink.executor, lambda: sink.clock and sink.clock[-1] == T0 + 2 * SECOND, what="the last /clock"
        )
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

    from feature_matching_ros.ros.bags.player import BagPlayer

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


def test_replay_skips_unimportable_types_and_stop_ends_a_loop(ros_context, tmp_path):
    import rclpy

    from feature_matching_ros.ros.bags.bag import BagError
    from feature_matching_ros.ros.bags.player import BagPlayer

    path = tmp_path / "bag"
    with Writer(path, version=Writer.VERSION_LATEST) as writer:
        alien = writer.add_connection("/alien", "alien_msgs/msg/Thing", msgdef="int32 x", rihs01=NO_HASH)
        text = writer.add_connection(TEXT_TOPIC, "std_msgs/msg/String", typestore=STORE)
        for i in range(3):
            writer.write(alien, T0 + i * SECOND // 10, b"\x00\x01\x00\x00\x07\x00\x00\x00")
            string = STORE.types["std_msgs/msg/String"](data=str(i))
            writer.write(
                text, T0 + i * SECOND // 10, bytes(STORE.serialize_cdr(string, "std_msgs/msg/String"))
            )
    node = rclpy.create_node("player", context=ros_context)
    with BagPlayer(node, path) as player:
        assert set(player.publishers) == {TEXT_TOPIC}
        assert "message type alien_msgs/msg/Thing is not importable" in player.skipped["/alien"]
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


def test_a_recorded_clock_replaces_the_generated_one(ros_context, tmp_path):
    import rclpy

    from feature_matching_ros.ros.bags.player import BagPlayer

    kind = "rosgraph_msgs/msg/Clock"
    with Writer(tmp_path / "bag", version=Writer.VERSION_LATEST) as writer:
        connection = writer.add_connection("/clock", kind, typestore=STORE)
        clock = STORE.types[kind](clock=STORE.types["builtin_interfaces/msg/Time"](sec=5, nanosec=0))
        writer.write(connection, T0, bytes(STORE.serialize_cdr(clock, kind)))
    node = rclpy.create_node("player", context=ros_context)
    with BagPlayer(node, tmp_path / "bag") as player:
        assert set(player.publishers) == {"/clock"}
        assert [p.topic_name for p in node.publishers].count("/clock") == 1


def test_qos_from_offers_follows_rosbag2():
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from feature_matching_ros.ros.bags.bag import qos_from_offers

    mixed = qos_from_offers([offer(QosReliability.BEST_EFFORT), RELIABLE])
    assert mixed.reliability == ReliabilityPolicy.RELIABLE and mixed.durability == DurabilityPolicy.VOLATILE
    assert qos_from_offers([offer(QosReliability.BEST_EFFORT)]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert qos_from_offers([]) is None


def same_contents(ours: object, theirs: object) -> bool:
    """A rosbags message equals an rclpy message, field by field."""
    for name in theirs.get_fields_and_field_types():
        a, b = getattr(ours, name), getattr(theirs, name)
        if hasattr(b, "get_fields_and_field_types"):
            if not same_contents(a, b):
                return False
        elif not np.array_equal(np.asarray(a), np.frombuffer(b, np.uint8) if isinstance(b, bytes) else b):
            return False
    return True


def published_messages(frames: list[np.ndarray]) -> list[tuple[str, object]]:
    from feature_matching_ros.msg import MatchArray
    from sensor_msgs.msg import Image

    sent = []
    for i, frame in enumerate(frames[:3]):
        image = Image(height=150, width=200, encoding="bgr8", step=600, data=frame.tobytes())
        image.header.stamp.sec, image.header.frame_id = 100 + i, "camera_optical"
        points = np.arange(8, dtype=np.float32) + i
        match = MatchArray(header=image.header, reference_id=f"tile_{i}", matcher="xfeat+lightglue")
        match.query_width, match.query_height, match.num_keypoints_query, match.total_ms = 200, 150, 40, 12.5
        match.query_points, match.reference_points = points.tolist(), (points * 2).tolist()
        match.confidence = [0.5, 0.25, 1.0, 0.0]
        sent += [("/camera/image_raw", image), ("/matches", match)]
    return sent


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_record_stores_what_was_published(ros_context, tmp_path, frames, storage):
    import rclpy
    from feature_matching_ros.msg import MatchArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from feature_matching_ros.ros.bags.recorder import BagRecorder, typestore_for

    source = rclpy.create_node("source", context=ros_context)
    publishers = {
        "/camera/image_raw": source.create_publisher(Image, "camera/image_raw", 10),
        "/matches": source.create_publisher(MatchArray, "matches", 10),
    }
    source.create_publisher(Image, "lossy", qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(source)
    sent = published_messages(frames)
    out = tmp_path / "recorded"
    node = rclpy.create_node("rec", context=ros_context)
    with BagRecorder(node, out, ["camera/image_raw", "matches", "lossy"], storage=storage) as recorder:
        recorder.start(timeout=10.0)
        assert node.get_subscriptions_info_by_topic("/lossy")[0].qos_profile.reliability.name == "BEST_EFFORT"
        spin_until(
            executor, lambda: all(p.get_subscription_count() for p in publishers.values()), what="match"
        )
        result = []
        thread = threading.Thread(target=lambda: result.append(recorder.record(max_messages=6, duration=20)))
        thread.start()
        for topic, msg in sent:
            publishers[topic].publish(msg)
            time.sleep(0.02)
        thread.join(25)
    assert result[0].written == {"/camera/image_raw": 3, "/matches": 3, "/lossy": 0}

    store = typestore_for(["feature_matching_ros/msg/MatchArray"])
    with Reader(out) as reader:
        connections = {c.topic: c for c in reader.connections}
        stored = [(c.topic, stamp, data) for c, stamp, data in reader.messages()]
    assert connections["/matches"].msgtype == "feature_matching_ros/msg/MatchArray"
    graph_hash = source.get_publishers_info_by_topic("/matches")[0].topic_type_hash
    assert connections["/matches"].digest == str(graph_hash)
    assert connections["/matches"].ext.offered_qos_profiles[0].reliability == QosReliability.RELIABLE
    assert connections["/lossy"].ext.offered_qos_profiles[0].reliability == QosReliability.BEST_EFFORT
    assert [stamp for _, stamp, _ in stored] == sorted(stamp for _, stamp, _ in stored)
    assert [topic for topic, _, _ in stored] == [topic for topic, _ in sent]
    for (topic, msg), (_, _, data) in zip(sent, stored, strict=True):
        kind = connections[topic].msgtype
        assert same_contents(store.deserialize_cdr(data, kind), msg)
        assert deserialize_message(data, type(msg)) == msg
        # The wire bytes have zeroed padding, as rosbags writes (rclpy's serialize_message leaves it unset).
        assert bytes(store.serialize_cdr(store.deserialize_cdr(data, kind), kind)) == data


def test_recorder_names_missing_topics_and_refuses_existing_paths(ros_context, tmp_path):
    import rclpy

    from feature_matching_ros.ros.bags.bag import BagError
    from feature_matching_ros.ros.bags.recorder import BagRecorder

    node = rclpy.create_node("rec", context=ros_context)
    with pytest.raises(BagError, match="no publisher after 0.3 s on: /nobody_here"):
        BagRecorder(node, tmp_path / "out", ["/nobody_here"]).start(timeout=0.3)
    assert not (tmp_path / "out").exists()
    with pytest.raises(BagError, match="exists already"):
        BagRecorder(node, tmp_path, ["/x"])
