from types import SimpleNamespace

import pytest

from feature_matching_ros.ros.infrastructure.sync import ApproximateSync


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


def test_pairing_watch_says_why_images_go_unpaired():
    from feature_matching_ros.ros.infrastructure.sync import PairingWatch

    now = [0.0]
    watch = PairingWatch("camera/image_raw", "camera/camera_info", 0.02, patience=2.0, clock=lambda: now[0])
    assert watch.problem() is None
    for t in (1.0, 1.1):
        watch.image(msg(t, "img"))
    now[0] = 1.9
    assert watch.problem() is None  # not for long enough yet
    now[0] = 2.1
    assert watch.problem() == (
        "2 image(s) on camera/image_raw not processed: no camera_info received on camera/camera_info "
        "(each image needs its camera_info)"
    )
    watch.info(msg(2.1, "info"))
    watch.image(msg(1.2, "img"))
    assert "the latest stamps differ by 0.900 s" in watch.problem()
    watch.paired()
    assert watch.problem() is None
    watch.image(msg(3.0, "img"))  # one unpaired image (a lost camera_info) is no problem
    now[0] = 9.0
    assert watch.problem() is None
    watch.image(msg(4.0, "img"))
    assert "no camera_info on camera/camera_info for 6.9 s" in watch.problem()
    now[0] = 20.0  # the images stopped: nothing is being lost any more
    assert watch.problem() is None
