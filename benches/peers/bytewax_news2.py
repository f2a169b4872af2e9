"""Bytewax (PyPI, 0.21): the peers' workload (news2_peer.py) as a Bytewax dataflow.

    INPUT=cohort.jsonl OUTPUT=alerts.txt python -m bytewax.run bytewax_news2:flow

One output line per alert: `patient time_us event band`, comparable with Vigil's alerts by
benches/peers/run.
"""

import os
from pathlib import Path

import bytewax.operators as op
from bytewax.connectors.files import FileSink, FileSource
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulLogic

from news2_peer import Patient, decode


class PatientLogic(StatefulLogic):
    """Bytewax's keyed state: one `Patient` per key, kept for the whole run."""

    def __init__(self):
        self.patient = Patient()

    def on_item(self, value):
        return self.patient.push(value), StatefulLogic.RETAIN

    def on_eof(self):
        return self.patient.finish(), StatefulLogic.RETAIN

    def snapshot(self):
        return None


flow = Dataflow("news2")
lines = op.input("in", flow, FileSource(Path(os.environ["INPUT"]), batch_size=10_000))
keyed = op.filter_map("decode", lines, decode)
keyed = op.key_on("patient", keyed, lambda kv: kv[0])
observations = op.map_value("value", keyed, lambda kv: kv[1])
alerts = op.stateful("news2", observations, lambda _resume: PatientLogic())
text = op.map("format", alerts, lambda kv: ("alerts", f"{kv[0]} {kv[1]}"))
op.output("out", text, FileSink(Path(os.environ["OUTPUT"])))
