"""Arrow Flight SQL against the PostgreSQL protocol and DuckDB, in one run
(issue 21):

    python3 benches/flight_bench.py [SF_DIR] [QUIVER_BINARY] [RUNS]

SF_DIR holds the header-less CSV and Parquet files of `examples/bench.rs`
(default target/bench-data/sf1); the binary defaults to
target/release/quiver; every path but psycopg into pandas (about 45 s a
run) is timed RUNS times (default 3) and the best is reported. The program

- starts `quiver serve` on a fresh data directory (fsync on) with Flight
  SQL beside pgwire, and loads lineitem with `COPY ... FROM STDIN (FORMAT
  csv)` over psycopg (our COPY rate; the other runs into a table dropped
  after each), waiting after each load for the checkpoint it started (a
  `CHECKPOINT`);
- fetches `SELECT * FROM lineitem` into a pyarrow Table through ADBC's
  Flight SQL driver; through psycopg (binary) into a pandas DataFrame; and
  through libpq in binary format, only counting the rows (the fastest a
  PostgreSQL-protocol client can be);
- fetches the same from DuckDB in process (`con.sql(...).to_arrow_table()`,
  the path DuckDB recommends, the table loaded from the Parquet file
  first);
- fetches the same with the same ADBC client from a server that does no
  work (`flight_floor_server.py`: pyarrow's C++ Flight server, the table
  in memory): what the client alone costs, the floor under any Flight SQL
  server's fetch on this machine;
- ingests lineitem (a pyarrow Table read from the Parquet file) with
  `adbc_ingest` into a new table (dropped after each run, and a
  `CHECKPOINT` waited for), against the COPY above.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from restart_bench import DDL, copy_csv  # noqa: E402

QUERY = "SELECT * FROM lineitem"


def start(binary, data_dir):
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--flight-listen", "127.0.0.1:0",
         "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "QUIVER_LOG": "warn"},
        text=True,
    )
    pg_port = flight_port = None
    while flight_port is None:
        line = server.stdout.readline()
        if not line:
            sys.exit("the server ended before listening")
        if line.startswith("QuiverDB listening on "):
            pg_port = line.strip().rsplit(":", 1)[-1]
        if line.startswith("QuiverDB Flight SQL listening on "):
            flight_port = line.strip().rsplit(":", 1)[-1]
    return server, f"host=127.0.0.1 port={pg_port} user=bench dbname=quiver", \
        f"grpc://127.0.0.1:{flight_port}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def best(runs, f):
    times = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - started)
    return min(times), result


def main():
    sf_dir = sys.argv[1] if len(sys.argv) > 1 else "target/bench-data/sf1"
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/quiver"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    data_dir = tempfile.mkdtemp(prefix="quiver-flight-")
    server, conninfo, uri = start(binary, data_dir)
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            copy_times = []
            for run in range(runs):
                table = "lineitem" if run == 0 else "lineitem_copied"
                conn.execute(f"CREATE TABLE {table} ({DDL['lineitem']})")
                started = time.perf_counter()
                copy_csv(conn, table, f"{sf_dir}/lineitem.csv")
                copy_times.append(time.perf_counter() - started)
                if run > 0:
                    conn.execute(f"DROP TABLE {table}")
                # The load started a checkpoint (its WAL passed the size
                # that starts one); wait for it, so that nothing is timed
                # against it.
                conn.execute("CHECKPOINT")
            copy_time = min(copy_times)
            rows = conn.execute("SELECT count(*) FROM lineitem").fetchone()[0]
        print(f"lineitem: {rows} rows")
        print(f"COPY FROM STDIN (csv, psycopg): {copy_time:.2f} s = {rows / copy_time / 1e6:.2f}M rows/s")

        flight = flight_sql.connect(uri, db_kwargs={"username": "bench", "password": ""},
                                    autocommit=True)

        def adbc_fetch():
            with flight.cursor() as cur:
                cur.execute(QUERY)
                return cur.fetch_arrow_table().num_rows

        def psycopg_pandas():
            with psycopg.connect(conninfo) as conn:
                with conn.cursor(binary=True) as cur:
                    cur.execute(QUERY)
                    names = [d.name for d in cur.description]
                    frame = pd.DataFrame(cur.fetchall(), columns=names)
                    return len(frame)

        def libpq_count():
            with psycopg.connect(conninfo) as conn:
                pgconn = conn.pgconn
                pgconn.send_query_params(QUERY.encode(), None, result_format=1)
                count = 0
                while (result := pgconn.get_result()) is not None:
                    count += result.ntuples
                return count

        results = {}
        for name, f in [("Flight SQL (ADBC) -> pyarrow", adbc_fetch),
                        ("libpq binary, rows counted", libpq_count),
                        ("psycopg binary -> pandas", psycopg_pandas)]:
            seconds, n = best(1 if "pandas" in name else runs, f)
            assert n == rows, (name, n, rows)
            results[name] = seconds
            print(f"{name}: {seconds:.2f} s = {rows / seconds / 1e6:.2f}M rows/s")

        import duckdb
        con = duckdb.connect()
        con.execute(f"CREATE TABLE lineitem AS SELECT * FROM read_parquet('{sf_dir}/lineitem.parquet')")
        def duckdb_fetch():
            # DuckDB's fastest path to a pyarrow Table (a DB-API result's
            # fetch_arrow_table makes an extra copy, DuckDB 2 warns).
            return con.sql(QUERY).to_arrow_table().num_rows

        seconds, n = best(runs, duckdb_fetch)
        assert n == rows
        results["DuckDB in process to_arrow_table"] = seconds
        print(f"DuckDB in process to_arrow_table: {seconds:.2f} s = {rows / seconds / 1e6:.2f}M rows/s")

        # The same client against a server that does no work (the table
        # in memory, sent without copies): what the client alone costs.
        floor = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "flight_floor_server.py"),
             f"{sf_dir}/lineitem.parquet", str(free_port())],
            stdout=subprocess.PIPE, text=True)
        try:
            floor_port = floor.args[-1]
            if floor.stdout.readline().strip() != "ready":
                sys.exit("the floor server did not start")
            floor_client = flight_sql.connect(f"grpc://127.0.0.1:{floor_port}", autocommit=True)

            def floor_fetch():
                with floor_client.cursor() as cur:
                    cur.execute(QUERY)
                    return cur.fetch_arrow_table().num_rows

            seconds, n = best(runs, floor_fetch)
            assert n == rows
            floor_client.close()
        finally:
            floor.terminate()
            floor.wait()
        results["no-work Flight server (client floor)"] = seconds
        print(f"ADBC from a no-work Flight server (pyarrow, table in memory): {seconds:.2f} s "
              f"= {rows / seconds / 1e6:.2f}M rows/s")

        # ADBC sends each record batch as one gRPC message (a slice with
        # all the buffers it points into), and its client refuses messages
        # over 16 MiB: read the Parquet file in compact batches of 64K rows.
        parquet = pq.ParquetFile(f"{sf_dir}/lineitem.parquet")
        table = pa.Table.from_batches(list(parquet.iter_batches(batch_size=65536)))
        ingest_times = []
        for run in range(runs):
            with flight.cursor() as cur:
                started = time.perf_counter()
                ingested = cur.adbc_ingest("lineitem_ingested", table, mode="create")
                ingest_times.append(time.perf_counter() - started)
                assert ingested == rows, (ingested, rows)
                cur.execute("DROP TABLE lineitem_ingested")
                cur.execute("CHECKPOINT")
        ingest_time = min(ingest_times)
        print(f"adbc_ingest (Flight SQL): {ingest_time:.2f} s = {rows / ingest_time / 1e6:.2f}M rows/s")
        flight.close()

        flight_time = results["Flight SQL (ADBC) -> pyarrow"]
        fastest_pg = min(results["libpq binary, rows counted"], results["psycopg binary -> pandas"])
        print()
        print(f"fetch: Flight SQL is {fastest_pg / flight_time:.1f}x the fastest pgwire path "
              f"(goal >= 5x); DuckDB in process is {flight_time / results['DuckDB in process to_arrow_table']:.1f}x "
              f"faster than Flight SQL (goal <= 2x)")
        print(f"client floor: a server that does no work is fetched from in "
              f"{results['no-work Flight server (client floor)']:.2f} s, "
              f"{results['no-work Flight server (client floor)'] / results['DuckDB in process to_arrow_table']:.1f}x DuckDB's time")
        print(f"ingest: adbc_ingest is {copy_time / ingest_time:.1f}x our COPY (goal >= 2x)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
