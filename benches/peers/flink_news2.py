"""Apache Flink through PyFlink (PyPI `apache-flink`): the peers' workload (news2_peer.py) as a
Flink DataStream job reading the file with Flink's FileSource.

The lines are decoded in a Python map, keyed by patient, and folded through the same `Patient`
in a KeyedProcessFunction whose keyed ValueState holds it (pickled, as PyFlink keeps Python
state); at the end of the input an event-time timer at the end of time scores each patient's
open set. Streaming mode over the bounded file keeps each patient's observations in file order.

    INPUT=cohort.jsonl OUTPUT=alerts.txt PARALLELISM=1 python flink_news2.py

One output line per alert: `patient time_us event band`, comparable with Vigil's alerts by
benches/peers/run.
"""

import os
import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
from pyflink.datastream.state import ValueStateDescriptor

from news2_peer import Patient, decode

END_OF_TIME = (1 << 63) - 2


class News2(KeyedProcessFunction):
    """One `Patient` per key in Flink's keyed state."""

    def open(self, runtime_context: RuntimeContext):
        descriptor = ValueStateDescriptor("patient", Types.PICKLED_BYTE_ARRAY())
        self.state = runtime_context.get_state(descriptor)

    def process_element(self, observation, ctx):
        patient_id, value = observation
        patient = self.state.value()
        if patient is None:
            patient = Patient()
            ctx.timer_service().register_event_time_timer(END_OF_TIME)
        alerts = patient.push(value)
        self.state.update(patient)
        for alert in alerts:
            yield f"{patient_id} {alert}"

    def on_timer(self, timestamp, ctx):
        patient = self.state.value()
        for alert in patient.finish():
            yield f"{ctx.get_current_key()} {alert}"


def main():
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(int(os.environ.get("PARALLELISM", "1")))
    # The Python workers run this interpreter (the peer's venv) and import the shared module.
    env.set_python_executable(sys.executable)
    env.add_python_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "news2_peer.py"))
    source = FileSource.for_record_stream_format(
        StreamFormat.text_line_format(), os.environ["INPUT"]
    ).build()
    lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "cohort")
    alerts = (
        lines.map(decode, output_type=Types.PICKLED_BYTE_ARRAY())
        .filter(lambda kv: kv is not None)
        .key_by(lambda kv: kv[0], key_type=Types.STRING())
        .process(News2(), output_type=Types.STRING())
    )
    with open(os.environ["OUTPUT"], "w") as out, alerts.execute_and_collect() as results:
        for alert in results:
            out.write(f"{alert}\n")


if __name__ == "__main__":
    main()
