from types import SimpleNamespace

import pytest

from feature_matching_ros.ros.sync import ApproximateSync


def msg(t: float, tag: str) -> SimpleNamespace:
    stamp = SimpleNamespace(sec=int(t), nanosec=int(round((t % 1) * 1e9)))
    return SimpleNamespace(header=SimpleNamespace(stamp=stamp), tag=tag)


def test_pairs_closest_within_slop_in_either_arrival_order():
    out = []
    sync = ApproximateSync(2, 10, 0.01, lambda a, b: out.append((a.tag, b.tag)))
    sync.add(0, msg(1.000, "img1"))
    sync.add(1, msg(1.004, "info1"))  # info after image
    sync.add(1, msg(2.000, "info2"))  # info first
    sync.add(0, msg(2.003, "img2"))
    sync.add(0, msg(3.000, "img3"))  # no info within 10 ms: never emitted
    sync.add(1, msg(3.050, "info3"))
    sync.add(0, msg(4.0, "img4"))
    sync.add(1, msg(4.0, "info4"))
    assert out == [("img1", "info1"), ("img2", "info2"), ("img4", "info4")]


def test_older_messages_are_discarded_after_a_match():
    out = []
    sync = ApproximateSync(2, 10, 0.5, lambda a, b: out.append((a.tag, b.tag)))
    sync.add(0, msg(1.0, "a1"))
    sync.add(0, msg(1.1, "a2"))
    sync.add(1, msg(1.12, "b"))  # pairs with a2; a1 is older and goes
    sync.add(1, msg(1.2, "b2"))  # a1 must not come back
    assert out == [("a2", "b")]


def test_queues_are_bounded():
    sync = ApproximateSync(2, 5, 0.001, lambda *m: None)
    for i in range(1000):
        sync.add(0, msg(i, "a"))
    assert max(len(q) for q in sync._queues) == 5


def test_three_inputs():
    out = []
    sync = ApproximateSync(3, 10, 0.02, lambda *m: out.append(tuple(x.tag for x in m)))
    sync.add(2, msg(5.01, "c"))
    sync.add(0, msg(5.00, "a"))
    assert out == []
    sync.add(1, msg(4.99, "b"))
    assert out == [("a", "b", "c")]


def test_rejects_bad_settings():
    with pytest.raises(ValueError):
        ApproximateSync(2, 0, 0.1, print)
