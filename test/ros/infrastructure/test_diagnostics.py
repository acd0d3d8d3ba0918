from feature_matching_ros.ros.infrastructure.diagnostics import ERROR, OK, WARN, Monitor, ThrottledLog


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_monitor_levels_and_values():
    clock = Clock()
    monitor = Monitor(error_hold_s=5.0, clock=clock)
    assert monitor.report().level == WARN  # nothing received yet
    for i in range(31):
        clock.t = 100.0 + i / 30
        monitor.input()
    for latency in range(1, 21):
        monitor.done(float(latency), inlier_ratio=0.5)
    monitor.drop(11)
    report = monitor.report()
    assert report.level == OK
    assert report.values["input_rate_hz"] == "30.00"
    assert (report.values["processed"], report.values["dropped"]) == ("20", "11")
    assert report.values["latency_ms_median"] == "10.5"
    assert report.values["latency_ms_p95"] == "19.1"
    assert report.values["inlier_ratio_mean"] == "0.500"

    monitor.error("bad image", "data length 10 != step*height 100")
    report = monitor.report()
    assert report.level == ERROR and report.message == "bad image: data length 10 != step*height 100"
    assert report.values["error: bad image"] == "1"
    clock.t += 6.0
    assert monitor.report().level == OK  # the error is over once the hold time has passed
    monitor.set_persistent_error("matcher: weights missing")
    clock.t += 60.0
    assert monitor.report().level == ERROR
    monitor.set_persistent_error(None)
    assert monitor.report().level == OK
    assert monitor.report().values["input_rate_hz"] == "0.00"  # input stopped long ago


def test_throttled_log_per_category():
    clock, lines = Clock(), []
    log = ThrottledLog(lines.append, period_s=2.0, clock=clock)
    assert log("bad image", "one")
    assert not log("bad image", "two")
    assert log("bad matches", "other category")
    clock.t += 2.5
    assert log("bad image", "three")
    assert lines == [
        "bad image: one",
        "bad matches: other category",
        "bad image: three (1 similar suppressed)",
    ]
