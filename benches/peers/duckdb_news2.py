"""DuckDB (PyPI): the batch anchor, benches/peers/news2.sql over a Vigil archive.

    ARCHIVE=dir OUTPUT=alerts.txt THREADS=1 python duckdb_news2.py

One output line per alert: `patient time_us event band`, comparable with Vigil's alerts by
benches/peers/run.
"""

import os
from pathlib import Path

import duckdb


def main():
    sql = (Path(__file__).parent / "news2.sql").read_text()
    con = duckdb.connect(config={"threads": int(os.environ.get("THREADS", "1"))})
    rows = con.sql(sql.replace("{archive}", os.environ["ARCHIVE"])).fetchall()
    with open(os.environ["OUTPUT"], "w") as out:
        for row in rows:
            out.write(" ".join(str(v) for v in row) + "\n")


if __name__ == "__main__":
    main()
