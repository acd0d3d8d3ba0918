"""``fm-replay``: play a rosbag2 bag (sqlite3 or mcap) through rclpy, with /clock, without ``ros2 bag``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import rclpy
from rclpy.context import Context
from rclpy.signals import SignalHandlerOptions

from ..ros.bags.bag import BagError, open_bag, split_ros_args
from ..ros.bags.player import QOS_MODES, BagPlayer, PlaybackStats
from ..ros.infrastructure.dds import use_large_image_profile

PROG = "fm-replay"
ACK_TIMEOUT_S = 5.0  # (the help says 5 s) at the end, for reliable subscribers to receive the last messages
EPILOG = """\
QoS (--qos): "recorded" adapts the profiles the bag's publishers offered, as rosbag2 does: best effort
(or transient local) only when every recorded publisher offered it, the largest recorded keep-last depth,
else reliable, volatile, depth 10 (a reliable publisher also reaches best-effort subscribers). "reliable"
ignores the recorded profiles; "best-effort" is sensor-data QoS for every topic.

/clock (rosgraph_msgs/Clock) carries the bag time of the playback at --clock-hz, from the start time
(plus --start-offset) to the stamp of the last message, so nodes run with use_sim_time:=true follow the
bag; it jumps back at every --loop pass. A /clock topic recorded in the bag is played instead.
At the end, fm-replay waits up to 5 s for reliable subscribers to acknowledge the last messages.

Exit status: 0 when every selected topic was played (also after Ctrl-C), 1 when some topic was left out
(type not importable, several types, or not in the bag; the others are played), 2 for a bad command line,
an unreadable bag or no playable topic. ROS arguments go after --ros-args."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Publish a rosbag2 bag at its recorded timing: the stored CDR bytes, unconverted.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", help="bag directory (with metadata.yaml), .db3 or .mcap file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1)")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default all)")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="S", help="skip the first S s")
    parser.add_argument("--loop", action="store_true", help="play again from the start until Ctrl-C")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument("--clock-hz", type=float, default=100.0, help="/clock rate in wall Hz (default 100)")
    parser.add_argument("--qos", choices=QOS_MODES, default="recorded", help="publisher QoS (see below)")
    parser.add_argument(
        "--remap", action="append", default=[], metavar="FROM:=TO", help="publish bag topic FROM as TO"
    )
    parser.add_argument(
        "--wait-for-subscribers",
        type=float,
        default=0.0,
        metavar="S",
        help="before playing, wait up to S s until every topic has a subscriber (default 0)",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.clock_hz <= 0 or args.start_offset < 0 or args.wait_for_subscribers < 0:
        parser.error("--rate and --clock-hz must be positive, --start-offset and --wait-for-subscribers >= 0")
    remap = [entry.split(":=") for entry in args.remap]
    if any(len(pair) != 2 or not all(pair) for pair in remap):
        parser.error("--remap takes FROM:=TO")
    args.remap = dict(remap)
    return args


def summary(stats: PlaybackStats) -> str:
    state = "interrupted after" if stats.interrupted else "published"
    rate = stats.total / stats.wall_s if stats.wall_s > 0 else 0.0
    lines = [
        f"{PROG}: {state} {stats.total} messages in {stats.wall_s:.2f} s wall for {stats.bag_s:.2f} s "
        f"of bag time ({stats.achieved_rate:.2f}x, {rate:.1f} msg/s, {stats.loops} complete pass(es))"
    ]
    width = max(len(topic) for topic in [*stats.published, "/clock"])
    lines += [f"  {topic:<{width}}  {count}" for topic, count in stats.published.items()]
    if stats.clock_messages:
        lines.append(f"  {'/clock':<{width}}  {stats.clock_messages}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ours, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    args = parse_args(ours)
    try:
        reader = open_bag(args.bag)
    except BagError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    use_large_image_profile()  # the player is the camera: its writers need the big segment
    context = Context()
    rclpy.init(args=[PROG, *ros_args], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("fm_replay", context=context)
    try:
        player = BagPlayer(
            node, reader, topics=args.topics, remap=args.remap, qos=args.qos, clock=not args.no_clock
        )
        for topic, reason in player.skipped.items():
            print(f"{PROG}: skipping {topic}: {reason}", file=sys.stderr)
        if args.wait_for_subscribers:
            lonely = player.wait_for_subscribers(args.wait_for_subscribers, stop)
            if lonely and not stop.is_set():
                print(f"{PROG}: playing without a subscriber on: {', '.join(lonely)}", file=sys.stderr)
        stats = player.play(
            rate=args.rate, start_offset=args.start_offset, loop=args.loop, clock_hz=args.clock_hz, stop=stop
        )
        for topic in [] if stats.interrupted else player.wait_for_acked(ACK_TIMEOUT_S):
            print(f"{PROG}: {topic}: not all acknowledged after {ACK_TIMEOUT_S:g} s", file=sys.stderr)
        print(summary(stats))
        player.close()
        return 1 if player.skipped else 0
    except BagError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
        reader.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
