"""The Python side of bench/kafka.sh, with confluent-kafka (librdkafka).

    reference_kafka.py produce BROKER TOPIC N   writes N seeded JSON messages (the benchmark's data)
    reference_kafka.py consume BROKER TOPIC     reads the whole topic into a pandas frame, as the
                                                toolkit's `kafka` source does (json_normalize), and
                                                prints its shape
"""

import json
import random
import sys
import uuid

import pandas as pd
from confluent_kafka import Consumer, Producer, TopicPartition


def produce(broker, topic, n):
    rng = random.Random(42)
    producer = Producer({"bootstrap.servers": broker, "linger.ms": 20, "batch.num.messages": 10000,
                         "queue.buffering.max.messages": 200000})
    for i in range(n):
        message = {
            "id": i,
            "user": {"name": f"user{i % 1000}", "age": 18 + i % 60},
            "amount": round(rng.uniform(0, 1000), 2),
            "label": rng.choice(["red", "green", "blue"]),
            "at": f"2026-12-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        }
        while True:
            try:
                producer.produce(topic, json.dumps(message).encode())
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(60)


def consume(broker, topic):
    consumer = Consumer({
        "bootstrap.servers": broker,
        "group.id": f"bench-{uuid.uuid4()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 10,
    })
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records, done = [], {p for p in partitions if ends[p] == 0}
    while len(done) < len(partitions):
        for m in consumer.consume(num_messages=10000, timeout=1.0):
            if m.error():
                raise RuntimeError(m.error())
            if m.offset() < ends[m.partition()]:
                records.append(json.loads(m.value()))
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
    consumer.close()
    frame = pd.json_normalize(records)
    print(frame.shape)


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        consume(sys.argv[2], sys.argv[3])
