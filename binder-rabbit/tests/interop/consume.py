"""Reads what a bindery source published, with pika, from a queue bound to its exchange.

usage: consume.py <amqp-uri> <exchange> <queue> <count>
Declares <queue> (durable) bound to <exchange> with "#", prints READY, then prints one JSON line
per message: body, content_type, delivery_mode and headers (bytes as {"hex": ...}).
"""
import json
import sys

import pika


def plain(value):
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main():
    uri, exchange, queue, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, exchange, routing_key="#")
    print("READY", flush=True)
    seen = 0
    for method, props, body in channel.consume(queue, inactivity_timeout=30):
        if method is None:
            print("TIMEOUT", flush=True)
            sys.exit(1)
        line = {
            "body": body.decode(),
            "content_type": props.content_type,
            "delivery_mode": props.delivery_mode,
            "headers": plain(props.headers or {}),
        }
        print(json.dumps(line), flush=True)
        channel.basic_ack(method.delivery_tag)
        seen += 1
        if seen == count:
            break
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
