"""Memory, load and restart of a data directory, next to DuckDB's file
database, in one run (issue 20):

    python3 benches/restart_bench.py [SF_DIR] [QUIVER_BINARY]

SF_DIR holds the header-less CSV and the Parquet files that
`examples/bench.rs` generates (default target/bench-data/sf1); the binary
defaults to target/release/quiver. The program

- starts `quiver serve` on a fresh data directory (fsync on), creates the
  eight TPC-H tables with their primary keys and loads each with
  `COPY ... FROM STDIN (FORMAT csv)`, timing lineitem's;
- prints the resident memory right after the load (the automatic
  checkpoint the load started may still be running, and the allocator
  has not yet given back what the load freed), 15 s later, and after a
  CHECKPOINT, and the tables' own bytes (`quiver_tables.memory_bytes`);
- stops the server (SIGTERM, a clean shutdown), starts it again and times
  from the start of the process: the first `SELECT count(*) FROM lineitem`
  (answered from the manifest), the first query that needs lineitem's rows,
  and the moment every table is resident (`quiver_tables.resident`); then
  the first INSERT into orders (the first write that needs its primary
  key) and a full scan of every table;
- does the same with DuckDB: a file database with the same primary keys
  loaded from the Parquet files, closed, then reopened and counted in a
  new process.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg

TABLES = {
    "nation": "n_nationkey",
    "region": "r_regionkey",
    "part": "p_partkey",
    "supplier": "s_suppkey",
    "partsupp": "ps_partkey, ps_suppkey",
    "customer": "c_custkey",
    "orders": "o_orderkey",
    "lineitem": "l_orderkey, l_linenumber",
}

DDL = {
    "nation": "n_nationkey BIGINT NOT NULL, n_name TEXT NOT NULL, n_regionkey BIGINT NOT NULL, n_comment TEXT NOT NULL",
    "region": "r_regionkey BIGINT NOT NULL, r_name TEXT NOT NULL, r_comment TEXT NOT NULL",
    "part": "p_partkey BIGINT NOT NULL, p_name TEXT NOT NULL, p_mfgr TEXT NOT NULL, p_brand TEXT NOT NULL, p_type TEXT NOT NULL, p_size INTEGER NOT NULL, p_container TEXT NOT NULL, p_retailprice DECIMAL(15,2) NOT NULL, p_comment TEXT NOT NULL",
    "supplier": "s_suppkey BIGINT NOT NULL, s_name TEXT NOT NULL, s_address TEXT NOT NULL, s_nationkey BIGINT NOT NULL, s_phone TEXT NOT NULL, s_acctbal DECIMAL(15,2) NOT NULL, s_comment TEXT NOT NULL",
    "partsupp": "ps_partkey BIGINT NOT NULL, ps_suppkey BIGINT NOT NULL, ps_availqty INTEGER NOT NULL, ps_supplycost DECIMAL(15,2) NOT NULL, ps_comment TEXT NOT NULL",
    "customer": "c_custkey BIGINT NOT NULL, c_name TEXT NOT NULL, c_address TEXT NOT NULL, c_nationkey BIGINT NOT NULL, c_phone TEXT NOT NULL, c_acctbal DECIMAL(15,2) NOT NULL, c_mktsegment TEXT NOT NULL, c_comment TEXT NOT NULL",
    "orders": "o_orderkey BIGINT NOT NULL, o_custkey BIGINT NOT NULL, o_orderstatus TEXT NOT NULL, o_totalprice DECIMAL(15,2) NOT NULL, o_orderdate DATE NOT NULL, o_orderpriority TEXT NOT NULL, o_clerk TEXT NOT NULL, o_shippriority INTEGER NOT NULL, o_comment TEXT NOT NULL",
    "lineitem": "l_orderkey BIGINT NOT NULL, l_partkey BIGINT NOT NULL, l_suppkey BIGINT NOT NULL, l_linenumber INTEGER NOT NULL, l_quantity DECIMAL(15,2) NOT NULL, l_extendedprice DECIMAL(15,2) NOT NULL, l_discount DECIMAL(15,2) NOT NULL, l_tax DECIMAL(15,2) NOT NULL, l_returnflag TEXT NOT NULL, l_linestatus TEXT NOT NULL, l_shipdate DATE NOT NULL, l_commitdate DATE NOT NULL, l_receiptdate DATE NOT NULL, l_shipinstruct TEXT NOT NULL, l_shipmode TEXT NOT NULL, l_comment TEXT NOT NULL",
}


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def gib(n):
    return f"{n / 2**30:.2f} GiB"


def copy_csv(conn, table, path):
    """`COPY table FROM STDIN (FORMAT csv)` of the file at `path`, sent in
    1 MiB chunks."""
    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)


def start(binary, data_dir):
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "QUIVER_LOG": "warn"},
        text=True,
    )
    # The server prints its address on its first line of stdout.
    line = server.stdout.readline()
    port = line.strip().rsplit(":", 1)[-1]
    return server, f"host=127.0.0.1 port={port} user=bench dbname=quiver"


def quiver(sf_dir, binary):
    data_dir = tempfile.mkdtemp(prefix="quiver-restart-")
    csv_bytes = sum(os.path.getsize(f"{sf_dir}/{t}.csv") for t in TABLES)
    server, conninfo = start(binary, data_dir)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table, columns in DDL.items():
            conn.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({TABLES[table]}))")
            started = time.perf_counter()
            copy_csv(conn, table, f"{sf_dir}/{table}.csv")
            if table == "lineitem":
                load = time.perf_counter() - started
                rows = conn.execute("SELECT count(*) FROM lineitem").fetchone()[0]
        after_load = rss(server.pid)
        time.sleep(15)
        settled = rss(server.pid)
        conn.execute("CHECKPOINT")
        after_checkpoint = rss(server.pid)
        tables = conn.execute("SELECT sum(memory_bytes) FROM quiver_tables").fetchone()[0]
    print(f"CSV of the eight tables: {gib(csv_bytes)}")
    print(f"quiver: COPY lineitem {rows} rows in {load:.2f} s = {rows / load / 1e6:.2f}M rows/s")
    print(
        f"quiver: RSS after load {gib(after_load)} ({after_load / csv_bytes:.2f}x CSV), "
        f"15 s later {gib(settled)} ({settled / csv_bytes:.2f}x CSV), "
        f"after CHECKPOINT {gib(after_checkpoint)} ({after_checkpoint / csv_bytes:.2f}x CSV), "
        f"tables' own bytes {gib(int(tables))} ({int(tables) / csv_bytes:.2f}x CSV)"
    )
    server.send_signal(signal.SIGTERM)
    server.wait()

    started = time.perf_counter()
    server, conninfo = start(binary, data_dir)
    while True:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                count = conn.execute("SELECT count(*) FROM lineitem").fetchone()[0]
                break
        except psycopg.OperationalError:
            time.sleep(0.005)
    first_count = time.perf_counter() - started
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # The first query that needs lineitem's rows (its read is under
        # way, or starts now).
        conn.execute("SELECT sum(l_extendedprice) FROM lineitem").fetchone()
        first_sum = time.perf_counter() - started
        while not conn.execute("SELECT bool_and(resident) FROM quiver_tables").fetchone()[0]:
            time.sleep(0.01)
        resident = time.perf_counter() - started
        t = time.perf_counter()
        conn.execute(
            "INSERT INTO orders VALUES (-1, 1, 'O', 1.00, '1998-01-01', '1-URGENT', 'Clerk#1', 0, 'x')"
        )
        first_insert = time.perf_counter() - t
        t = time.perf_counter()
        for table in TABLES:
            conn.execute(f"SELECT * FROM {table} WHERE false").fetchall()
            conn.execute(f"SELECT count(*) FROM (SELECT * FROM {table}) t").fetchone()
        scans = time.perf_counter() - t
        after_restart = rss(server.pid)
    server.send_signal(signal.SIGTERM)
    server.wait()
    print(
        f"quiver: restart to the first count(*) ({count} rows) {first_count * 1000:.0f} ms; "
        f"to the first sum over lineitem {first_sum * 1000:.0f} ms; "
        f"every table resident {resident * 1000:.0f} ms; "
        f"first INSERT into orders {first_insert * 1000:.0f} ms; "
        f"a scan of every table {scans * 1000:.0f} ms; RSS after restart {gib(after_restart)}"
    )
    shutil.rmtree(data_dir, ignore_errors=True)
    return first_count


def duckdb_reference(sf_dir):
    import duckdb

    path = os.path.join(tempfile.mkdtemp(prefix="duckdb-restart-"), "tpch.duckdb")
    con = duckdb.connect(path)
    for table, columns in DDL.items():
        con.execute(f"CREATE TABLE {table} ({columns}, PRIMARY KEY ({TABLES[table]}))")
        con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet('{sf_dir}/{table}.parquet')")
    con.close()
    script = (
        "import duckdb, time, sys\n"
        "t = time.perf_counter()\n"
        f"con = duckdb.connect({path!r})\n"
        "n = con.execute('SELECT count(*) FROM lineitem').fetchone()[0]\n"
        "print(time.perf_counter() - t, n)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    secs, rows = out.stdout.split()
    print(
        f"duckdb {duckdb.__version__}: reopen the file and count(*) ({rows} rows) "
        f"{float(secs) * 1000:.0f} ms (in a fresh process, after `import duckdb`)"
    )
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    return float(secs)


def main():
    sf_dir = sys.argv[1] if len(sys.argv) > 1 else "target/bench-data/sf1"
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/quiver"
    ours = quiver(sf_dir, binary)
    theirs = duckdb_reference(sf_dir)
    print(f"restart to the first count(*): quiver / duckdb = {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
