"""Quix Streams (PyPI): the peers' workload (news2_peer.py) as a Quix Streams application over
Kafka, against the same broker Vigil reads.

The topic holds the wire-format lines keyed by patient. A StreamingDataFrame decodes each, and a
stateful `apply` keeps each patient's `Patient` in Quix's keyed state (RocksDB, JSON values,
changelogged to the broker as Quix does by default), so a restart would resume it. The
application stops once nothing new has arrived for `IDLE` seconds; the alerts it produced are
written to `OUTPUT`.

    BROKERS=127.0.0.1:9092 TOPIC=cohort GROUP=quix OUTPUT=alerts.txt python quix_news2.py

One output line per alert: `patient time_us event band`, comparable with Vigil's alerts by
benches/peers/run. The stream does not end, so the last open set of each patient is not scored
(Vigil's run scores it when it stops): the checked input has no alert in its last second.
"""

import os

from quixstreams import Application

from news2_peer import Patient, decode


def news2(observation, state):
    """One patient's observation → the alerts of the set it closes, with `patient` in front."""
    patient_id, value = observation
    saved = state.get("patient")
    patient = Patient() if saved is None else Patient.from_json(saved)
    alerts = patient.push(value)
    state.set("patient", patient.to_json())
    return [f"{patient_id} {a}" for a in alerts]


def main():
    app = Application(
        broker_address=os.environ["BROKERS"],
        consumer_group=os.environ["GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ.get("STATE_DIR", "state"),
        loglevel="WARNING",
    )
    topic = app.topic(os.environ["TOPIC"], key_deserializer="str", value_deserializer="bytes")
    sdf = app.dataframe(topic)
    sdf = sdf.apply(lambda line: decode(line)).filter(lambda kv: kv is not None)
    sdf = sdf.apply(news2, stateful=True, expand=True)
    alerts = app.run(timeout=float(os.environ.get("IDLE", "5")))
    with open(os.environ["OUTPUT"], "w") as out:
        for alert in alerts:
            out.write(f"{alert['_value']}\n" if isinstance(alert, dict) else f"{alert}\n")


if __name__ == "__main__":
    main()
