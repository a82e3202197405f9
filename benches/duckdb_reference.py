"""DuckDB side of `examples/bench.rs`: the same TPC-H data, in memory, in
this process (python `duckdb`). Prints one JSON object on stdout.

    python3 benches/duckdb_reference.py DATA_DIR QUERIES_DIR RUNS SECONDS CLIENTS

- memory: resident set size after creating the eight tables from Parquet,
- tpch: median seconds of each query after one warm-up run, and its rows,
- load: seconds for `COPY lineitem FROM 'lineitem.csv'` into an empty table,
- mix: CLIENTS threads, each with its own cursor, running Q1, Q6, Q14 in
  turn for SECONDS: queries per second and latency percentiles.
"""

import json
import os
import statistics
import sys
import threading
import time

import duckdb

TABLES = ["nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main():
    data, queries, runs, seconds, clients = sys.argv[1:6]
    runs, seconds, clients = int(runs), float(seconds), int(clients)
    out = {"version": duckdb.__version__, "threads": None}
    con = duckdb.connect()
    out["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
    for table in TABLES:
        con.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{data}/{table}.parquet')"
        )
    out["memory"] = rss_bytes()

    texts = [open(os.path.join(queries, f"q{i}.sql")).read() for i in range(1, 23)]
    tpch = []
    for text in texts:
        rows = len(con.execute(text).fetchall())
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            con.execute(text).fetchall()
            times.append(time.perf_counter() - started)
        tpch.append({"median": statistics.median(times), "rows": rows})
    out["tpch"] = tpch

    con.execute("CREATE TABLE lineitem_load AS SELECT * FROM lineitem LIMIT 0")
    started = time.perf_counter()
    con.execute(f"COPY lineitem_load FROM '{data}/lineitem.csv' (FORMAT csv, HEADER false)")
    out["load"] = time.perf_counter() - started
    con.execute("DROP TABLE lineitem_load")

    if seconds > 0:
        mix = [texts[0], texts[5], texts[13]]
        latencies = []
        lock = threading.Lock()
        deadline = time.perf_counter() + seconds

        def client(n):
            cursor = con.cursor()
            mine = []
            i = n
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                cursor.execute(mix[i % 3]).fetchall()
                mine.append(time.perf_counter() - started)
                i += 1
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        out["mix"] = {
            "queries": len(latencies),
            "qps": len(latencies) / elapsed,
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
