"""Produce keyed JSON records with Spring-style headers, then a tombstone, with confluent-kafka.

usage: produce.py <brokers> <topic>
"""
import json
import sys

from confluent_kafka import Producer


def main() -> None:
    brokers, topic = sys.argv[1], sys.argv[2]
    errors = []

    def report(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "acks": "all"})
    for i in range(3):
        p.produce(
            topic,
            key=b"customer-7",
            value=json.dumps({"id": i, "customer": "customer-7", "cents": 100 * i}).encode(),
            headers=[
                ("contentType", b"application/json"),
                ("correlationId", b"py-corr-%d" % i),
                ("x-origin", "python ✓".encode()),
            ],
            on_delivery=report,
        )
    # A tombstone: the key with a null value.
    p.produce(topic, key=b"customer-7", value=None, on_delivery=report)
    left = p.flush(30)
    if left or errors:
        sys.exit(f"not delivered: {left} left, errors {errors}")


if __name__ == "__main__":
    main()
