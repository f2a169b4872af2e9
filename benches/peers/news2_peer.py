"""The peers' shared workload: Vigil's core NEWS2 path in plain Python, for every Python peer.

Decode and validate wire-format JSON lines, keep per-patient rolling windows (count, sum, min,
max per vital in 5-minute buckets over 15 min, 1 h, 4 h and 12 h), score NEWS2 (scale 1,
half-up quantisation, incomplete sets scored as a lower bound) on each observation set (a
patient's observations at one event time) and raise or lower the NEWS2 band as Vigil's policy
does with `deescalate_after = 1` and no reminders, staleness or data-quality alerts
(benches/peers/news2-latest.toml is the same policy for Vigil). Each peer's script wires these
into its engine idiomatically (benches/peers/*_news2.py); the logic is one, so their alerts must
be the same as Vigil's, which benches/peers/run checks.
"""

import json
from collections import deque
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal


UNITS = {
    "respiratory_rate": "/min",
    "heart_rate": "/min",
    "spo2": "%",
    "temperature": "Cel",
    "systolic_bp": "mm[Hg]",
    "diastolic_bp": "mm[Hg]",
    "supplemental_oxygen": "L/min",
}
RANGES = {
    "respiratory_rate": (0, 100),
    "heart_rate": (0, 300),
    "spo2": (0, 100),
    "temperature": (10, 47),
    "systolic_bp": (10, 300),
    "diastolic_bp": (5, 250),
    "supplemental_oxygen": (0, 80),
}
WINDOWS_MS = [15 * 60_000, 3_600_000, 4 * 3_600_000, 12 * 3_600_000]
RESOLUTION_MS = 5 * 60_000
BANDS = ["low", "low-medium", "medium", "high"]


def decode(line):
    """A wire-format line → (patient, observation) or None when rejected."""
    try:
        o = json.loads(line)
        patient, vital, value = o["patient"], o["vital"], o["value"]
        if not isinstance(patient, str) or not 0 < len(patient) <= 64:
            return None
        t = datetime.fromisoformat(o["time"].replace("Z", "+00:00"))
        time_us = int(t.timestamp()) * 1_000_000 + t.microsecond
        if vital == "consciousness":
            if value not in ("A", "C", "V", "P", "U"):
                return None
        else:
            lo, hi = RANGES[vital]
            if o.get("unit") != UNITS[vital] or not lo <= float(value) <= hi:
                return None
            value = Decimal(str(value))
        return (patient, (time_us, vital, value))
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def q(value, places):
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def subscores(latest):
    """NEWS2 chart (scale 1) → dict of sub-scores of the parameters present."""
    s = {}
    if "respiratory_rate" in latest:
        rr = q(latest["respiratory_rate"], "1")
        s["rr"] = 3 if rr <= 8 else 1 if rr <= 11 else 0 if rr <= 20 else 2 if rr <= 24 else 3
    if "spo2" in latest:
        x = q(latest["spo2"], "1")
        s["spo2"] = 3 if x <= 91 else 2 if x <= 93 else 1 if x <= 95 else 0
    if "supplemental_oxygen" in latest:
        s["air"] = 2 if latest["supplemental_oxygen"] > 0 else 0
    if "systolic_bp" in latest:
        x = q(latest["systolic_bp"], "1")
        s["sbp"] = 3 if x <= 90 else 2 if x <= 100 else 1 if x <= 110 else 0 if x <= 219 else 3
    if "heart_rate" in latest:
        x = q(latest["heart_rate"], "1")
        s["hr"] = 3 if x <= 40 else 1 if x <= 50 else 0 if x <= 90 else 1 if x <= 110 else 2 if x <= 130 else 3
    if "consciousness" in latest:
        s["acvpu"] = 0 if latest["consciousness"] == "A" else 3
    if "temperature" in latest:
        x = q(latest["temperature"], "0.1")
        s["temp"] = 3 if x <= Decimal("35.0") else 1 if x <= Decimal("36.0") else 0 if x <= Decimal("38.0") else 1 if x <= Decimal("39.0") else 2
    return s


def charted(latest):
    """The values the score read, as charted (quantised): a new set is one where they differ."""
    out = []
    for vital, places in [
        ("respiratory_rate", "1"),
        ("spo2", "1"),
        ("supplemental_oxygen", None),
        ("systolic_bp", "1"),
        ("heart_rate", "1"),
        ("consciousness", None),
        ("temperature", "0.1"),
    ]:
        value = latest.get(vital)
        if value is None:
            out.append(None)
        elif vital == "supplemental_oxygen":
            out.append("oxygen" if value > 0 else "air")
        elif vital == "consciousness":
            out.append(value)
        else:
            out.append(q(value, places))
    return tuple(out)


def band(s):
    """(band or None, complete): an incomplete set has a band only if its lower bound reaches
    low-medium or above."""
    total, complete = sum(s.values()), len(s) == 7
    if total >= 7:
        return "high", complete
    if total >= 5:
        return "medium", complete
    if 3 in s.values():
        return "low-medium", complete
    return ("low" if complete else None), complete


class Patient:
    """One patient: windows, latest values, the pending observation set and the band policy."""

    def __init__(self):
        self.buckets = {}  # vital → deque of [index, count, sum, min, max]
        self.latest = {}
        self.pending_time = None
        self.pending = []
        self.raised = None
        self.previous = None
        self.lower_run = 0

    def window_push(self, vital, time_us, value):
        v = float(value) if vital != "consciousness" else "ACVPU".index(value)
        index = time_us // 1000 // RESOLUTION_MS
        b = self.buckets.setdefault(vital, deque())
        if b and b[-1][0] == index:
            last = b[-1]
            last[1] += 1
            last[2] += v
            last[3] = min(last[3], v)
            last[4] = max(last[4], v)
        else:
            b.append([index, 1, v, v, v])
        oldest = (time_us // 1000 - WINDOWS_MS[-1]) // RESOLUTION_MS
        while b and b[0][0] < oldest:
            b.popleft()

    def score_set(self):
        time_us = self.pending_time
        for _, vital, value in self.pending:
            self.window_push(vital, time_us, value)
            if vital != "diastolic_bp":
                self.latest[vital] = value
        self.pending = []
        s = subscores(self.latest)
        values = charted(self.latest)
        new_set = values != self.previous
        self.previous = values
        b, complete = band(s)
        current = BANDS.index(self.raised) if self.raised else 0
        if b is not None and BANDS.index(b) > current and BANDS.index(b) >= 1:
            self.raised, self.lower_run = b, 0
            return [f"{time_us} raised {b}"]
        if b is not None and BANDS.index(b) < current and complete:
            if new_set:
                self.lower_run += 1
            if self.lower_run < 1:
                return []
            self.raised = b if BANDS.index(b) >= 1 else None
            self.lower_run = 0
            return [f"{time_us} lowered {b}"]
        self.lower_run = 0
        return []

    def push(self, value):
        """One observation `(time_us, vital, value)`, in event-time order → the alerts of the
        set it closes (`time_us event band` strings)."""
        time_us = value[0]
        out = []
        if self.pending_time is not None and time_us != self.pending_time:
            out = self.score_set()
        self.pending_time = time_us
        self.pending.append(value)
        return out

    def finish(self):
        """The end of the input: the alerts of the last, still open, set."""
        return self.score_set() if self.pending else []

    # For engines that keep keyed state as JSON (Quix Streams): the same fields, with deques as
    # lists and decimals as their text, so that a round trip changes nothing.
    def to_json(self):
        def text(v):
            return None if v is None else str(v)

        return {
            "buckets": {k: list(b) for k, b in self.buckets.items()},
            "latest": {k: text(v) for k, v in self.latest.items()},
            "pending_time": self.pending_time,
            "pending": [[t, k, text(v)] for t, k, v in self.pending],
            "raised": self.raised,
            "previous": None if self.previous is None else [text(v) for v in self.previous],
            "lower_run": self.lower_run,
        }

    @classmethod
    def from_json(cls, state):
        p = cls()
        p.buckets = {k: deque(b) for k, b in state["buckets"].items()}
        p.latest = {k: value_of(k, v) for k, v in state["latest"].items()}
        p.pending_time = state["pending_time"]
        p.pending = [(t, k, value_of(k, v)) for t, k, v in state["pending"]]
        p.raised = state["raised"]
        previous = state["previous"]
        if previous is not None:
            numeric = (True, True, False, True, True, False, True)  # the order of `charted`
            previous = tuple(
                Decimal(v) if v is not None and n else v for v, n in zip(previous, numeric)
            )
        p.previous = previous
        p.lower_run = state["lower_run"]
        return p


def value_of(vital, text):
    """A value as `decode` gives it, from its text."""
    return text if vital == "consciousness" else Decimal(text)
