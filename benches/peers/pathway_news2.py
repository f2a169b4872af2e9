"""Pathway (PyPI): the peers' workload (news2_peer.py) as a Pathway program.

Pathway reads the file as a table of lines (its Rust reader), decodes each with a UDF, groups by
patient and folds each patient's observations, in event-time order, through the same `Patient`
with a stateful reducer; the alerts come out as a flattened table written as plain text.
`mode="static"` reads the whole file as one batch: the file is finite and the comparison is of
the work, not of how often Pathway commits. The reducer keeps each patient's `Patient` in its
state and sorts a batch by event time, so batches of a stream would give the same alerts (the
table of alerts so far would then be re-emitted at each commit).

    INPUT=cohort.jsonl OUTPUT=alerts.txt THREADS=1 python pathway_news2.py

One output line per alert: `patient time_us event band`, comparable with Vigil's alerts by
benches/peers/run.
"""

import copy
import os
from decimal import Decimal

import pathway as pw

from news2_peer import Patient, decode


@pw.udf(deterministic=True)
def decode_line(line: str) -> tuple | None:
    """A line → (patient, (time_us, vital, value as text)): Pathway keeps numbers as floats, and
    NEWS2 rounds the decimal that was sent."""
    kv = decode(line)
    if kv is None:
        return None
    patient, (time_us, vital, value) = kv
    return (patient, (time_us, vital, str(value)))


@pw.reducers.stateful_many
def news2(state: tuple | None, rows: list[tuple[list, int]]) -> tuple:
    """One batch of a patient's rows, in event-time order → (the patient, every alert so far,
    the open set's alerts if the input ended here)."""
    patient, alerts = (pw.wrap_py_object(Patient()), ()) if state is None else state[:2]
    new = []
    for ((time_us, vital, value),), _ in sorted(rows, key=lambda r: r[0][0][0]):
        value = value if vital == "consciousness" else Decimal(value)
        new.extend(patient.value.push((time_us, vital, value)))
    alerts = alerts + tuple(new)
    return (patient, alerts, tuple(copy.deepcopy(patient.value).finish()))


def main():
    lines = pw.io.plaintext.read(os.environ["INPUT"], mode="static")
    decoded = lines.select(kv=decode_line(pw.this.data)).filter(pw.this.kv.is_not_none())
    observations = decoded.select(
        patient=pw.apply_with_type(lambda kv: kv[0], str, pw.this.kv),
        observation=pw.apply_with_type(lambda kv: kv[1], tuple, pw.this.kv),
    )
    per_patient = observations.groupby(pw.this.patient).reduce(
        pw.this.patient, state=news2(pw.this.observation)
    )
    per_patient = per_patient.select(
        pw.this.patient,
        alerts=pw.apply_with_type(lambda s: list(s[1] + s[2]), list[str], pw.this.state),
    )
    alerts = per_patient.flatten(pw.this.alerts).select(
        line=pw.apply(lambda p, a: f"{p} {a}", pw.this.patient, pw.this.alerts)
    )
    pw.io.csv.write(alerts, os.environ["OUTPUT"])
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


if __name__ == "__main__":
    main()
