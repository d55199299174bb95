"""Publishes JSON messages with pika, the way a foreign (non-bindery) service would.

usage: publish.py <amqp-uri> <exchange> <routing-key> <count>
Each message: body {"id": i, "customer": "c-<i>"}, content_type application/json, headers
tenant=acme (text), x-bin=b"\x00\xff" (bytes), correlation id "pika-<i>". Publisher confirms on.
"""
import json
import sys

import pika


def main():
    uri, exchange, routing_key, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()
    for i in range(count):
        body = json.dumps({"id": i, "customer": f"c-{i}"}).encode()
        props = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            correlation_id=f"pika-{i}",
            headers={"tenant": "acme", "x-bin": b"\x00\xff", "x-origin": "pika"},
        )
        # Raises if the broker nacks or the message is unroutable (mandatory).
        channel.basic_publish(exchange, routing_key, body, props, mandatory=True)
    connection.close()
    print(f"published {count}", flush=True)


if __name__ == "__main__":
    main()
