"""Read <count> records of a topic from the beginning with confluent-kafka; print them as JSON.

usage: consume.py <brokers> <topic> <count> <timeout-seconds>
"""
import json
import sys
import time
import uuid

from confluent_kafka import Consumer


def main() -> None:
    brokers, topic, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"interop-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            print(f"consumer error: {m.error()}", file=sys.stderr)
            continue
        out.append(
            {
                "key": m.key().decode() if m.key() is not None else None,
                "value": json.loads(m.value()) if m.value() is not None else None,
                "partition": m.partition(),
                "timestamp": m.timestamp()[1],
                "headers": {k: v.decode("utf-8", "replace") for k, v in (m.headers() or [])},
            }
        )
    c.close()
    print(json.dumps(out))
    if len(out) < count:
        sys.exit(f"only {len(out)} of {count} records on {topic} within {timeout}s")


if __name__ == "__main__":
    main()
