"""``fm-replay`` and ``fm-record``: in-process through ``main`` and as the installed scripts over real DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ..ros import conftest
from ..ros.conftest import DOMAIN_ID, spin_until

ros_context = conftest.ros_context  # the fixture, for these tests over DDS

pytestmark = pytest.mark.ros

BIN = Path(sys.executable).parent
STORE = get_typestore(Stores.ROS2_KILTED)
T0 = 1_700_000_000 * 10**9
TEXTS = [f"message {i}" for i in range(5)]


def script(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{path} is not installed: pip install --no-build-isolation -e ."
    return path


def string_bag(path: Path, alien: bool = False) -> Path:
    """Five std_msgs/String on /chatter, 0.1 s apart; with ``alien`` also a topic of an unknown type."""
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP) as writer:
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=STORE)
        if alien:
            no_hash = "RIHS01_" + "0" * 64
            other = writer.add_connection("/alien", "alien_msgs/msg/Thing", msgdef="int32 x", rihs01=no_hash)
            writer.write(other, T0, b"\x00\x01\x00\x00\x07\x00\x00\x00")
        for i, text in enumerate(TEXTS):
            data = STORE.serialize_cdr(STORE.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")
            writer.write(chatter, T0 + i * 10**8, bytes(data))
    return path


class Listener:
    def __init__(self, context: object, topic: str = "/chatter") -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        self.node = rclpy.create_node("cli_listener", context=context)
        self.texts: list[str] = []
        self.node.create_subscription(String, topic, lambda m: self.texts.append(m.data), 100)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def make_listener(ros_context):
    """``make_listener(topic)`` -> a Listener, destroyed after the test. rclpy before Kilted (Jazzy, Humble)
    does not destroy a context's nodes when the context shuts down: a node left over would keep its
    subscription in the graph, and the next test's fm-replay --wait-for-subscribers would see it."""
    made: list[Listener] = []

    def make(topic: str = "/chatter") -> Listener:
        made.append(Listener(ros_context, topic))
        return made[-1]

    yield make
    for each in made:
        each.close()


def run(name: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    return subprocess.Popen(
        [script(name), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_help_describes_options_and_exit_codes(capsys):
    from feature_matching_ros.cli import record, replay

    expected = {
        replay.main: ["--rate", "--remap", "--qos", "--loop", "/clock", "Exit status"],
        record.main: ["--storage", "--max-messages", "--duration", "Exit status"],
    }
    for main, words in expected.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words)


def test_unreadable_bags_exit_2_with_one_line(tmp_path, capsys):
    from feature_matching_ros.cli.replay import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.db3").write_bytes(b"not a database")
    for bag in (tmp_path / "missing", tmp_path / "empty", tmp_path / "junk.db3"):
        assert main([str(bag)]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
        assert captured.err.startswith(f"fm-replay: cannot read bag {bag}")


def test_unimportable_type_is_skipped_with_exit_1(ros_context, tmp_path, capsys):
    from feature_matching_ros.cli.replay import main

    bag = string_bag(tmp_path / "bag", alien=True)
    assert main([str(bag), "--rate", "10", "--no-clock"]) == 1
    captured = capsys.readouterr()
    assert "fm-replay: skipping /alien: message type alien_msgs/msg/Thing is not importable" in captured.err
    assert "published 5 messages" in captured.out and "/chatter  5" in captured.out
    assert main([str(bag), "--topics", "/alien"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"no playable topic in bag {bag}")


def test_script_replays_to_a_subscriber(make_listener, tmp_path):
    listener = make_listener("/remapped")
    bag = string_bag(tmp_path / "bag")
    process = run(
        "fm-replay", str(bag), "--rate", "2", "--wait-for-subscribers", "15", "--remap", "chatter:=remapped"
    )
    spin_until(listener.executor, lambda: process.poll() is not None, what="fm-replay to finish")
    out, err = process.communicate()
    assert process.returncode == 0, err
    spin_until(listener.executor, lambda: len(listener.texts) == len(TEXTS), timeout=2, what="every message")
    assert listener.texts == TEXTS
    assert "fm-replay: published 5 messages" in out and "0.40 s of bag time" in out
    assert "/remapped  5" in out and "/clock" in out


def test_script_stops_a_loop_on_ctrl_c(make_listener, tmp_path):
    listener = make_listener()
    bag = string_bag(tmp_path / "bag")
    process = run("fm-replay", str(bag), "--loop", "--rate", "4", "--wait-for-subscribers", "15")
    spin_until(listener.executor, lambda: len(listener.texts) > len(TEXTS) or process.poll() is not None)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert out.startswith("fm-replay: interrupted after") and "complete pass(es)" in out


def test_script_records_a_topic(make_listener, tmp_path):
    from std_msgs.msg import String

    listener = make_listener()
    node = listener.node
    publisher = node.create_publisher(String, "/to_record", 10)
    count = iter(range(10**6))
    node.create_timer(0.05, lambda: publisher.publish(String(data=f"n{next(count)}")))
    out_dir = tmp_path / "recorded"
    process = run(
        "fm-record", str(out_dir), "--topics", "to_record", "--storage", "mcap", "--max-messages", "5"
    )
    spin_until(listener.executor, lambda: process.poll() is not None, what="fm-record to finish")
    out, err = process.communicate()
    assert process.returncode == 0, err
    assert f"fm-record: wrote 5 messages to {out_dir}" in out
    with Reader(out_dir) as reader:
        assert [c.msgtype for c in reader.connections] == ["std_msgs/msg/String"]
        texts = [STORE.deserialize_cdr(data, "std_msgs/msg/String").data for _, _, data in reader.messages()]
    first = int(texts[0][1:])
    assert texts == [f"n{first + i}" for i in range(5)]


def test_recording_a_replay_with_sim_time_keeps_the_bag_stamps(ros_context, tmp_path):
    out_dir = tmp_path / "recorded"
    options = ["--topics", "/chatter", "--max-messages", "5", "--wait", "20"]
    recorder = run("fm-record", str(out_dir), *options, "--ros-args", "-p", "use_sim_time:=true")
    bag = string_bag(tmp_path / "bag")
    player = run("fm-replay", str(bag), "--rate", "2", "--wait-for-subscribers", "20")
    _, player_err = player.communicate(timeout=40)
    _, recorder_err = recorder.communicate(timeout=20)
    assert player.returncode == 0 and recorder.returncode == 0, player_err + recorder_err
    with Reader(out_dir) as reader:
        stamps = [stamp - T0 for _, stamp, _ in reader.messages()]
    # Stamped on receipt with the /clock of the replay: bag time, none long before its own bag stamp (a
    # few clock periods), some later (a first message can be resent while the subscription gets matched).
    assert stamps == sorted(stamps) and len(stamps) == 5
    assert all(i * 10**8 - 5 * 10**7 <= stamp <= 5 * 10**8 for i, stamp in enumerate(stamps)), stamps


def test_record_script_names_missing_topics(ros_context, tmp_path):
    process = run("fm-record", str(tmp_path / "out"), "--topics", "/nobody", "--wait", "0.5")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2 and out == ""
    assert err.strip() == "fm-record: no publisher after 0.5 s on: /nobody"
    assert not (tmp_path / "out").exists()
