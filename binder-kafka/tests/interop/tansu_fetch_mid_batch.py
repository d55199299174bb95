#!/usr/bin/env python3
"""tansu skips the rest of a record batch when a Fetch starts inside it.

Kafka's Fetch contract: a fetch at offset X returns the record batch that *contains* X (the
client drops the records below X). tansu 0.6.0 (memory storage; `DynoStore::fetch` keeps only
stored batches whose base offset is >= X: `offsets.split_off(&offset)`) returns the batches
that *start* at or after X, so records X..end-of-that-batch are never delivered.

Any consumer whose committed offset (or seek position) lands inside a multi-record batch
silently loses the rest of that batch. This is what bindery's crash test hits on tansu: the
feeder's first produce batch holds offsets 0..511; the killed relay had committed e.g. 64, and
the restarted one received 512 next (ids 64..511 lost).

Second finding, same script: ListOffsets(latest) returns (base offset of the last batch) + 1
instead of (last offset + 1); for batches [0..499] [500..599] it answers 501, not 600.

No bindery code involved: only confluent-kafka (librdkafka). Exit 0 when the broker behaves
like Kafka, 1 when it shows the bug.

    python3 binder-kafka/tests/interop/tansu_fetch_mid_batch.py [bootstrap=127.0.0.1:9092 [topic]]

With a topic name the topic must exist with 1 partition (librdkafka's MockCluster, the control
this was checked against, has no CreateTopics; there all checks pass).
"""
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BROKERS = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
TOPIC = sys.argv[2] if len(sys.argv) > 2 else "midbatch-" + uuid.uuid4().hex[:8]

if len(sys.argv) <= 2:
    admin = AdminClient({"bootstrap.servers": BROKERS})
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)

# Two produce requests -> two record batches: offsets 0..499 and 500..599.
producer = Producer({"bootstrap.servers": BROKERS, "linger.ms": 1000, "batch.num.messages": 100000})
for first, last in ((0, 499), (500, 599)):
    for i in range(first, last + 1):
        producer.produce(TOPIC, str(i).encode())
    assert producer.flush(30) == 0, "produce not acknowledged"


def first_record(consumer):
    deadline = time.time() + 10
    while time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            return m.offset(), int(m.value())
    return None


ok = True
probe = Consumer({"bootstrap.servers": BROKERS, "group.id": "probe-" + uuid.uuid4().hex, "enable.auto.commit": False})

# Sanity: everything is stored, from offset 0 (a batch boundary) every record comes back.
probe.assign([TopicPartition(TOPIC, 0, 0)])
seen = []
deadline = time.time() + 15
while len(seen) < 600 and time.time() < deadline:
    m = probe.poll(0.5)
    if m is not None and not m.error():
        seen.append(m.offset())
print(f"from offset 0: {len(seen)} records, offsets {seen[0] if seen else None}..{seen[-1] if seen else None}")

low, high = probe.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
print(f"ListOffsets earliest/latest: {low}/{high} (Kafka: 0/600)")
ok &= high == 600

# 1. A fetch positioned inside the first batch.
for start in (100, 499):
    probe.assign([TopicPartition(TOPIC, 0, start)])
    got = first_record(probe)
    print(f"fetch from offset {start}: first record delivered {got} (Kafka: ({start}, {start}))")
    ok &= got == (start, start)
probe.close()

# 2. The way it bites a consumer group: committed offset 100, a new member resumes there.
group = "resume-" + uuid.uuid4().hex
committer = Consumer({"bootstrap.servers": BROKERS, "group.id": group, "enable.auto.commit": False})
committer.commit(offsets=[TopicPartition(TOPIC, 0, 100)], asynchronous=False)
committer.close()
member = Consumer(
    {
        "bootstrap.servers": BROKERS,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
)
member.subscribe([TOPIC])
committed = member.committed([TopicPartition(TOPIC, 0)], timeout=10)[0].offset
got = first_record(member)
print(f"group committed {committed}; resumed member's first record {got} (Kafka: (100, 100))")
ok &= got == (100, 100)
member.close()

print("broker behaves like Kafka" if ok else "BROKER BUG: records inside a batch are skipped / latest offset wrong")
sys.exit(0 if ok else 1)
