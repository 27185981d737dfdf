import threading
import time

from ovnbgp.agent.workqueue import QUIET, WorkQueue


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_burst_is_one_batch_with_all_keys_and_causes():
    q = WorkQueue(debounce=0.05, resync_interval=3600)
    for i in range(500):
        q.mark([("pb", i)], "PortBindingChassisCreatedEvent")
    q.mark([("pb", 1)], "FIPSetEvent")
    b = q.get(timeout=5)
    assert b is not None and not b.full
    assert len(b.keys) == 500
    assert b.causes["PortBindingChassisCreatedEvent"] == 500
    assert b.causes["FIPSetEvent"] == 1
    assert q.get(timeout=0.1) is None  # nothing left


def test_periodic_resync_is_a_full_batch():
    clock = FakeClock()
    q = WorkQueue(debounce=0.2, resync_interval=60, clock=clock)
    assert q.get(timeout=0) is None
    clock.t += 61
    b = q.get(timeout=0)
    assert b is not None and b.full and "periodic resync" in b.reasons
    clock.t += 30
    assert q.get(timeout=0) is None  # next resync is 60 s after the last one


def test_request_full_and_stop():
    q = WorkQueue(debounce=0, resync_interval=3600)
    q.request_full("SIGHUP")
    b = q.get(timeout=1)
    assert b.full and b.reasons == ["SIGHUP"]
    t = threading.Timer(0.05, q.stop)
    t.start()
    assert q.get() is None
    assert q.stopped


def test_lone_event_is_due_after_a_short_quiet_not_the_whole_debounce():
    clock = FakeClock()
    q = WorkQueue(debounce=0.2, resync_interval=3600, clock=clock)
    q.mark(["a"], "Port_Binding")
    assert q.get(timeout=0) is None
    clock.t += QUIET
    b = q.get(timeout=0)
    assert b is not None and b.keys == {"a"}


def test_steady_stream_is_gathered_up_to_the_debounce():
    clock = FakeClock()
    q = WorkQueue(debounce=0.2, resync_interval=3600, clock=clock)
    for i in range(40):  # an event every half QUIET: never quiet, so the debounce caps it
        q.mark([i], "Port_Binding")
        assert q.get(timeout=0) is None
        clock.t += QUIET / 2
    clock.t = 1000.0 + 0.2
    b = q.get(timeout=0)
    assert b is not None and len(b.keys) == 40


def test_wake_ends_a_wait_without_a_batch_and_keeps_what_is_pending():
    q = WorkQueue(debounce=10, resync_interval=3600)
    threading.Timer(0.05, q.wake).start()
    started = time.monotonic()
    assert q.get() is None  # no timeout: only the wake ends it
    assert time.monotonic() - started < 5
    q.mark(["a"], "Port_Binding")
    q.wake()
    assert q.get(timeout=0) is None  # woken before the batch was due: it stays pending
    b = q.get(timeout=5)
    assert b is not None and b.keys == {"a"}
