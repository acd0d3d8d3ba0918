"""``fm-record``: record topics into a rosbag2 bag (sqlite3 or mcap) through rclpy, without ``ros2 bag``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions

from ..ros.bags.bag import BagError, split_ros_args
from ..ros.bags.recorder import STORAGES, BagRecorder, RecordStats

PROG = "fm-record"
EPILOG = """\
Each topic needs a publisher within --wait seconds; its message type and QoS come from the graph
(subscription reliable, or transient local, only when every publisher offers it, as rosbag2 does), and the
publishers' QoS profiles are stored in the bag metadata. Messages are stored as received (CDR bytes),
stamped with the receive time on the node clock (the bag time with --ros-args -p use_sim_time:=true).
Message definitions come from rosbags' typestore ($ROS_DISTRO, else the newest ROS 2 one) or from
share/<package>/msg/*.msg (the package's own messages).

Recording stops at --duration, --max-messages or Ctrl-C; the bag is closed properly in every case.
Exit status: 0 after recording (also after Ctrl-C), 2 for a bad command line, an existing OUT, a topic
without a publisher, or a message type without a definition; 130 for Ctrl-C before recording started."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record topics, as serialized bytes, into a new rosbag2 bag.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out", help="bag directory to create (must not exist)")
    parser.add_argument("--topics", nargs="+", required=True, metavar="TOPIC", help="topics to record")
    parser.add_argument("--storage", choices=tuple(STORAGES), default="sqlite3", help="default sqlite3")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of recording")
    parser.add_argument("--max-messages", type=int, metavar="N", help="stop after N messages in all")
    parser.add_argument(
        "--wait", type=float, default=10.0, metavar="S", help="wait up to S s for the publishers (default 10)"
    )
    args = parser.parse_args(argv)
    if (args.duration is not None and args.duration <= 0) or (
        args.max_messages is not None and args.max_messages < 1
    ):
        parser.error("--duration and --max-messages must be positive")
    if args.wait < 0:
        parser.error("--wait must be >= 0")
    return args


def summary(stats: RecordStats, out: str) -> str:
    state = "interrupted after writing" if stats.interrupted else "wrote"
    lines = [f"{PROG}: {state} {stats.total} messages to {out} in {stats.wall_s:.2f} s"]
    width = max(len(topic) for topic in stats.written)
    lines += [f"  {topic:<{width}}  {count}" for topic, count in stats.written.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ours, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = parse_args(ours)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    context = Context()
    rclpy.init(args=[PROG, *ros_args], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("fm_record", context=context)
    try:
        with BagRecorder(node, args.out, args.topics, storage=args.storage) as recorder:
            recorder.start(args.wait, stop)
            stats = recorder.record(duration=args.duration, max_messages=args.max_messages, stop=stop)
        print(summary(stats, args.out))
        return 0
    except BagError as exc:
        if stop.is_set():
            return 130
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
