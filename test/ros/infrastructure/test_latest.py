import threading
import time

from feature_matching_ros.ros.infrastructure.latest import LatestWorker


def test_slow_worker_processes_latest_and_counts_drops():
    seen, gate = [], threading.Event()

    def process(item: int) -> None:
        gate.wait(5)
        seen.append(item)

    worker = LatestWorker(process, lambda item, exc: None)
    try:
        assert worker.submit(0) is False
        time.sleep(0.05)  # the worker has taken 0 and waits at the gate
        replaced = [worker.submit(i) for i in range(1, 101)]
        assert replaced == [False] + [True] * 99  # 1 becomes pending, 2..100 each replace the pending one
        gate.set()
        assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert seen == [0, 100]
    assert (worker.submitted, worker.processed, worker.dropped) == (101, 2, 99)


def test_errors_go_to_the_handler_and_the_worker_survives():
    errors = []

    def process(item: int) -> None:
        if item == 1:
            raise ValueError("bad item")

    worker = LatestWorker(process, lambda item, exc: errors.append((item, str(exc))))
    try:
        for i in range(3):
            worker.submit(i)
            assert worker.wait_idle(5)
    finally:
        worker.stop()
    assert errors == [(1, "bad item")]
    assert worker.processed == 3


def test_stop_drops_pending_and_refuses_new_items():
    gate = threading.Event()
    worker = LatestWorker(lambda item: gate.wait(5), lambda item, exc: None)
    worker.submit(0)
    time.sleep(0.05)
    worker.submit(1)
    gate.set()
    worker.stop()
    assert worker.submit(2) is False
    assert worker.dropped == 1 and worker.processed == 1
