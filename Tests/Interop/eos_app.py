"""A consume-transform-produce application in exactly-once mode, as Kafka's transactions are meant
to be used (confluent-kafka): read a batch with read_committed, write its transformation and the
consumer's next offsets in one transaction, commit. Any error ends the process; whoever runs it
starts it again (test_exactly_once.py kills and restarts it at random moments).

    python3 eos_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID [PAUSE_SECONDS]

PAUSE_SECONDS holds each transaction open that long before it commits (default 0), so that a kill
is likely to find one open.
"""

import faulthandler
import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer


def main() -> int:
    # SIGUSR1 prints where the app is (the test asks when the app makes no progress).
    faulthandler.register(signal.SIGUSR1)
    bootstrap, source, sink, group, txn_id = sys.argv[1:6]
    pause = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
        # Static membership: a restarted instance takes its place at once, without a rebalance wait.
        "group.instance.id": f"{group}-instance", "session.timeout.ms": 6000,
        "metadata.recovery.strategy": "none",
    })
    # librdkafka 2.16's re-bootstrap (its default metadata.recovery.strategy) decommissions every
    # broker once the only one is down; a transactional producer whose coordinator handle is then
    # left "terminating" hangs in send_offsets_to_transaction past its timeout. A single-node
    # cluster that restarts triggers it (with Kafka as with MiniBroker), so the app opts out.
    producer_config = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                       "metadata.recovery.strategy": "none"}
    if os.environ.get("EOS_APP_DEBUG"):  # librdkafka's debug contexts, for looking into a failure
        producer_config["debug"] = os.environ["EOS_APP_DEBUG"]
    producer = Producer(producer_config)
    # Fences the previous instance and aborts the transaction it left open.
    producer.init_transactions(30)
    consumer.subscribe([source])
    try:
        while True:
            batch = [m for m in consumer.consume(100, 0.5) if not m.error()]
            if not batch:
                continue
            producer.begin_transaction()
            for m in batch:
                producer.produce(sink, key=m.value(), value=b"out-" + m.value(), partition=m.partition())
            positions = consumer.position(consumer.assignment())
            metadata = consumer.consumer_group_metadata()
            producer.send_offsets_to_transaction(positions, metadata, 30)
            if pause:
                producer.flush(30)  # the records are in the log, the transaction still open
                time.sleep(pause)
            producer.commit_transaction(30)
    except KafkaException as e:
        print(f"eos_app: {e}", file=sys.stderr)
        return 1
    finally:
        consumer.close()


if __name__ == "__main__":
    sys.exit(main())
