"""Times the 22 TPC-H queries on a running QuiverDB server under settings
given per mode, best of RUNS (default 3) after one warm-up, and prints one
line per query and the totals. Used to choose the join settings of issue 19
and to compare two builds (one server each, PORT set per run):

    PORT=5432 python3 benches/tpch_settings.py base \\
        "shared:datafusion.optimizer.hash_join_single_partition_threshold_rows=1048576"

A mode is NAME or NAME:SETTING=VALUE,SETTING=VALUE (each sent as SET).
QS=1,6,12 limits the queries. The server must hold the TPC-H tables
(examples/bench.rs loads them; see BENCHMARKS.md)."""

import os
import sys
import time

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    modes = []
    for arg in sys.argv[1:]:
        name, _, settings = arg.partition(":")
        modes.append((name, [f"SET {s}" for s in settings.split(",") if s]))
    port = os.environ.get("PORT", "5432")
    runs = int(os.environ.get("RUNS", "3"))
    queries = [int(q) for q in os.environ.get("QS", ",".join(map(str, range(1, 23)))).split(",")]
    totals = {name: 0.0 for name, _ in modes}
    for q in queries:
        sql = open(os.path.join(HERE, "tpch", f"q{q}.sql")).read()
        line = []
        for name, settings in modes:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} user=quiver dbname=quiver", autocommit=True
            ) as conn:
                for s in settings:
                    conn.execute(s)
                conn.execute(sql).fetchall()
                best = float("inf")
                for _ in range(runs):
                    started = time.perf_counter()
                    conn.execute(sql).fetchall()
                    best = min(best, time.perf_counter() - started)
            totals[name] += best * 1000
            line.append(f"{name}={best * 1000:.0f}")
        print(f"Q{q}", " ".join(line), flush=True)
    print("total", " ".join(f"{n}={t:.0f}" for n, t in totals.items()))


if __name__ == "__main__":
    main()
