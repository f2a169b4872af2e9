"""Writes a wire-format JSON lines file to a new Kafka topic, keyed by patient, for the Kafka
peers and Vigil's Kafka run in benches/peers/run (confluent-kafka, installed with Quix Streams).

    python produce.py BROKERS TOPIC PARTITIONS FILE
"""

import json
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    brokers, topic, partitions, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, partitions, 1, config={"retention.ms": "-1"})]).values():
        future.result()
    producer = Producer(
        {"bootstrap.servers": brokers, "linger.ms": 20, "batch.size": 1 << 20, "acks": "all"}
    )
    n = 0
    with open(path, "rb") as lines:
        for line in lines:
            line = line.rstrip(b"\n")
            key = json.loads(line)["patient"].encode()
            while True:
                try:
                    producer.produce(topic, line, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
            if n % 10_000 == 0:
                producer.poll(0)
    if producer.flush(60) != 0:
        sys.exit(f"produce: {topic}: messages left unsent")
    print(f"produce: {n} messages to {topic} ({partitions} partitions)", file=sys.stderr)


if __name__ == "__main__":
    main()
