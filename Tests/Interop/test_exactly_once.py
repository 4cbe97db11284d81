"""Exactly-once processing (issue 23's proof): confluent-kafka's consume-transform-produce loop
(eos_app.py) over 10,000 input records, SIGKILLed and restarted at random moments — and, in a
second test, the broker SIGKILLed under it. Read with read_committed, the output holds every input
exactly once; the records of the transactions the kills aborted are in the log (read_uncommitted)
but never seen by read_committed."""

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

from clients import TIMEOUT, consume_partition, create_topic, produce

RECORDS = 10_000
PARTITIONS = 2
APP = os.path.join(os.path.dirname(__file__), "eos_app.py")


class App:
    """The application as a supervisor runs it: started again whenever it is not running."""

    def __init__(self, bootstrap: str, source: str, sink: str):
        # 100 transactions of at most 100 records, each held open 150 ms: kills find one open.
        self.args = [sys.executable, APP, bootstrap, source, sink, f"eos-{uuid.uuid4().hex[:8]}", f"eos-{uuid.uuid4().hex[:8]}", "0.15"]
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("EOS_APP_LOG", os.devnull), "a"))
            self.starts += 1

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


def fill(bootstrap: str, source: str) -> None:
    records = [{"value": b"%d" % i, "partition": i % PARTITIONS} for i in range(RECORDS)]
    produce(bootstrap, source, records, partition=None)


def output(bootstrap: str, sink: str, isolation: str) -> list[bytes]:
    values = []
    for p in range(PARTITIONS):
        values += [r.value for r in consume_partition(bootstrap, sink, p, config={"isolation.level": isolation})]
    return values


def run_until_done(app: App, bootstrap: str, sink: str, chaos, seconds: float = 120) -> None:
    """Keeps the app running and calls `chaos` every tenth of a second (on a thread of their own:
    reading the output takes seconds) until read_committed output has every input."""
    stop = threading.Event()

    def supervise():
        while not stop.is_set():
            app.ensure_running()
            chaos()
            time.sleep(0.1)

    supervisor = threading.Thread(target=supervise, daemon=True)
    supervisor.start()
    deadline = time.monotonic() + seconds
    try:
        while True:
            done = len(output(bootstrap, sink, "read_committed"))
            if done >= RECORDS:
                return
            if time.monotonic() >= deadline and app.process is not None and app.process.poll() is None:
                app.process.send_signal(signal.SIGUSR1)  # its stack goes to its log (EOS_APP_LOG)
                time.sleep(0.5)
            assert time.monotonic() < deadline, f"only {done} of {RECORDS} records processed in {seconds}s"
            time.sleep(1)
    finally:
        stop.set()
        supervisor.join()


def check_exactly_once(bootstrap: str, sink: str) -> None:
    committed = output(bootstrap, sink, "read_committed")
    expected = sorted(b"out-%d" % i for i in range(RECORDS))
    assert sorted(committed) == expected, (
        f"{len(committed)} records read_committed, {len(set(committed))} distinct, of {RECORDS}")
    uncommitted = output(bootstrap, sink, "read_uncommitted")
    assert len(uncommitted) >= len(committed)
    # Anything beyond the committed records belongs to aborted transactions: copies of inputs only.
    assert set(uncommitted) <= set(expected)


def test_each_input_is_processed_exactly_once_while_the_app_is_killed(broker, topic):
    source, sink = topic + "-in", topic + "-out"
    create_topic(broker.bootstrap, source, partitions=PARTITIONS)
    create_topic(broker.bootstrap, sink, partitions=PARTITIONS)
    fill(broker.bootstrap, source)
    app = App(broker.bootstrap, source, sink)
    rng = random.Random(23)
    next_kill = [time.monotonic() + rng.uniform(2.0, 4.0)]

    def kill_the_app_now_and_then():
        # A restarted app needs about a second to get going: kills come 1.5-4 s apart.
        if app.kills < 6 and time.monotonic() >= next_kill[0]:
            app.kill()
            next_kill[0] = time.monotonic() + rng.uniform(1.5, 4.0)

    try:
        run_until_done(app, broker.bootstrap, sink, kill_the_app_now_and_then)
    finally:
        app.stop()
    assert app.kills >= 3 and app.starts > app.kills, f"{app.kills} kills, {app.starts} starts: too few to prove anything"
    check_exactly_once(broker.bootstrap, sink)
    print(f"\nexactly once: {RECORDS} records through {app.starts} app starts and {app.kills} SIGKILLs")


def test_each_input_is_processed_exactly_once_while_the_broker_is_killed(broker_factory, topic):
    broker = broker_factory()
    source, sink = topic + "-in", topic + "-out"
    create_topic(broker.bootstrap, source, partitions=PARTITIONS)
    create_topic(broker.bootstrap, sink, partitions=PARTITIONS)
    fill(broker.bootstrap, source)
    app = App(broker.bootstrap, source, sink)
    rng = random.Random(int(os.environ.get("EOS_SEED", "890")))
    kills = [0]
    next_kill = [time.monotonic() + rng.uniform(2.0, 4.0)]

    def kill_the_broker_now_and_then():
        if kills[0] < 4 and time.monotonic() >= next_kill[0]:
            broker.restart(hard=True)
            kills[0] += 1
            next_kill[0] = time.monotonic() + rng.uniform(2.0, 4.0)

    try:
        run_until_done(app, broker.bootstrap, sink, kill_the_broker_now_and_then, seconds=int(os.environ.get("EOS_SECONDS", "180")))
    finally:
        app.stop()
    assert kills[0] >= 3, f"{kills[0]} broker kills: too few to prove anything"
    check_exactly_once(broker.bootstrap, sink)
    print(f"\nexactly once: {RECORDS} records through {kills[0]} broker SIGKILLs and {app.starts} app starts")
