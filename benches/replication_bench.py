"""Commit throughput, COPY rate and replication lag with no replica, one
asynchronous replica and one synchronous replica, for QuiverDB and for
PostgreSQL's streaming replication, in one run on this machine (issue 22):

    python3 benches/replication_bench.py [SF_DIR] [QUIVER_BINARY] [SECONDS]

SF_DIR holds the TPC-H CSV files `examples/bench.rs` generates (default
target/bench-data/sf1; orders.csv, 1.5M rows, is loaded); the binary
defaults to target/release/quiver; SECONDS (default 10) is how long the
16 writers run. For each system and mode the program starts a fresh
primary (data directory, fsync on) and, for the replicated modes, a
replica on the same machine that starts from a base backup, then

- runs 16 writers, each on its own connection, committing one-row INSERTs
  as fast as they can for SECONDS, and reports commits per second;
- loads orders.csv with `COPY orders FROM STDIN (FORMAT csv)` and reports
  rows per second, while a sampler reads the replica's lag on the primary
  every 20 ms (`pg_stat_replication`: WAL bytes not yet replayed, and
  `replay_lag`), reported as p50/p99 over the COPY and until the replica
  has caught up;
- checks that the replica ends with the primary's row count.

PostgreSQL 15 runs from /usr/lib/postgresql/15/bin as the `postgres` user
(skipped with a printed reason when it is not installed): `initdb`,
`pg_basebackup -R`, and `synchronous_standby_names = '*'` for the
synchronous mode.
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

SF_DIR = sys.argv[1] if len(sys.argv) > 1 else "target/bench-data/sf1"
QUIVER = sys.argv[2] if len(sys.argv) > 2 else "target/release/quiver"
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
PG_BIN = "/usr/lib/postgresql/15/bin"
WRITERS = 16

ORDERS = (
    "o_orderkey BIGINT NOT NULL, o_custkey BIGINT NOT NULL, o_orderstatus TEXT NOT NULL, "
    "o_totalprice DECIMAL(15,2) NOT NULL, o_orderdate DATE NOT NULL, o_orderpriority TEXT NOT NULL, "
    "o_clerk TEXT NOT NULL, o_shippriority INTEGER NOT NULL, o_comment TEXT NOT NULL"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, user, timeout=120):
    deadline = time.time() + timeout
    while True:
        try:
            psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres" if user == "postgres" else "quiver", autocommit=True).close()
            return
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def interval_seconds(text):
    if text is None:
        return 0.0
    text = str(text)
    if text.count(":") == 2:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return float(text)


def pct(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Quiver:
    name = "QuiverDB"
    user = "postgres"
    lag_query = "SELECT replay_lag_bytes, replay_lag FROM pg_stat_replication"

    def __init__(self, mode):
        self.mode = mode
        self.root = tempfile.mkdtemp(prefix="qrepl-")
        self.procs = []

    def start(self):
        self.port = free_port()
        args = [QUIVER, "serve", "--data-dir", f"{self.root}/primary", "--listen", f"127.0.0.1:{self.port}",
                "--checkpoint-wal-mb", "256"]
        if self.mode == "sync":
            args += ["--synchronous-replicas", "1"]
        self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(self.port, self.user)
        with self.connect() as c:
            # No replica yet: these commits must not wait for one.
            c.execute("SET synchronous_commit = local")
            c.execute("CREATE ROLE repl REPLICATION LOGIN")
            c.execute(f"CREATE TABLE orders ({ORDERS})")
            c.execute("CREATE TABLE commits (w int, i int)")
        if self.mode != "none":
            self.replica_port = free_port()
            self.procs.append(subprocess.Popen(
                [QUIVER, "serve", "--data-dir", f"{self.root}/replica", "--listen", f"127.0.0.1:{self.replica_port}",
                 "--replicate-from", f"postgres://repl@127.0.0.1:{self.port}/quiver", "--replica-name", "r1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(self.replica_port, self.user)

    def connect(self, port=None):
        return psycopg.connect(host="127.0.0.1", port=port or self.port, user=self.user, dbname="quiver", autocommit=True)

    def caught_up(self, primary, replica):
        target = primary.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]
        return replica.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0] == target

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
            p.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class Postgres:
    name = "PostgreSQL 15"
    user = "postgres"
    lag_query = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), replay_lag FROM pg_stat_replication"

    def __init__(self, mode):
        self.mode = mode
        self.root = tempfile.mkdtemp(prefix="pgrepl-")
        shutil.chown(self.root, "postgres", "postgres")
        self.procs = []

    def run(self, *args):
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def server(self, data, port):
        return subprocess.Popen(
            ["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres", "-D", data, "-p", str(port),
             "-k", self.root, "-c", "listen_addresses=127.0.0.1", "-c", "max_wal_size=4GB",
             "-c", "shared_buffers=1GB"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        self.port = free_port()
        primary = f"{self.root}/primary"
        self.run(f"{PG_BIN}/initdb", "-D", primary, "-A", "trust", "-U", "postgres")
        with open(f"{primary}/pg_hba.conf", "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        self.procs.append(self.server(primary, self.port))
        wait_for(self.port, self.user)
        self.run(f"{PG_BIN}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "quiver")
        with self.connect() as c:
            c.execute(f"CREATE TABLE orders ({ORDERS})")
            c.execute("CREATE TABLE commits (w int, i int)")
        if self.mode != "none":
            self.replica_port = free_port()
            replica = f"{self.root}/replica"
            self.run(f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-D", replica, "-R", "-X", "stream")
            self.procs.append(self.server(replica, self.replica_port))
            wait_for(self.replica_port, self.user)
            if self.mode == "sync":
                # Only now: commits before would wait for a standby.
                with self.connect() as c:
                    c.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
                    c.execute("SELECT pg_reload_conf()")

    def connect(self, port=None):
        return psycopg.connect(host="127.0.0.1", port=port or self.port, user=self.user, dbname="quiver", autocommit=True)

    def caught_up(self, primary, replica):
        target = primary.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]
        replayed = replica.execute("SELECT pg_last_wal_replay_lsn()").fetchone()[0]
        return replica.execute("SELECT pg_wal_lsn_diff(%s, %s)", (target, replayed)).fetchone()[0] <= 0

    def stop(self):
        # runuser does not pass signals on: stop each postmaster by its pid.
        for data in ["replica", "primary"]:
            try:
                with open(f"{self.root}/{data}/postmaster.pid") as f:
                    os.kill(int(f.readline()), signal.SIGINT)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
        for p in reversed(self.procs):
            p.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def commits(system):
    stop = time.time() + SECONDS
    counts = [0] * WRITERS

    def writer(w):
        with system.connect() as c:
            i = 0
            while time.time() < stop:
                c.execute("INSERT INTO commits VALUES (%s, %s)", (w, i))
                i += 1
            counts[w] = i

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.time() - started)


def copy(system):
    lags, lag_secs = [], []
    done = threading.Event()

    def sampler():
        with system.connect() as c:
            while not done.is_set():
                for row in c.execute(system.lag_query).fetchall():
                    lags.append(float(row[0] or 0))
                    lag_secs.append(interval_seconds(row[1]))
                time.sleep(0.02)

    sampling = threading.Thread(target=sampler)
    if system.mode != "none":
        sampling.start()
    started = time.time()
    with system.connect() as c:
        with c.cursor().copy("COPY orders FROM STDIN (FORMAT csv)") as cp:
            with open(f"{SF_DIR}/orders.csv", "rb") as f:
                while chunk := f.read(1 << 20):
                    cp.write(chunk)
    elapsed = time.time() - started
    rows = 0
    with system.connect() as c:
        rows = c.execute("SELECT count(*) FROM orders").fetchone()[0]
    caught = None
    if system.mode != "none":
        with system.connect() as p, system.connect(system.replica_port) as r:
            deadline = time.time() + 300
            while not system.caught_up(p, r) and time.time() < deadline:
                time.sleep(0.02)
            caught = time.time() - started - elapsed
            replica_rows = r.execute("SELECT count(*) FROM orders").fetchone()[0]
            assert replica_rows == rows, f"replica has {replica_rows} rows, primary {rows}"
        done.set()
        sampling.join()
    return rows / elapsed, lags, lag_secs, caught


def main():
    systems = [Quiver]
    only = os.environ.get("ONLY")  # e.g. ONLY=Postgres:sync reruns one case
    if os.path.exists(f"{PG_BIN}/postgres"):
        systems.append(Postgres)
    else:
        print(f"PostgreSQL is not installed ({PG_BIN}): measuring QuiverDB only")
    results = []
    for system_class in systems:
        for mode in ["none", "async", "sync"]:
            if only and only != f"{system_class.__name__}:{mode}":
                continue
            system = system_class(mode)
            try:
                system.start()
                tps = commits(system)
                rate, lags, lag_secs, caught = copy(system)
            finally:
                system.stop()
            results.append((system.name, mode, tps, rate, lags, lag_secs, caught))
            print(f"{system.name:14} {mode:5}  commits/s {tps:9.0f}  COPY rows/s {rate:10.0f}"
                  + (f"  lag p50 {pct(lags, .5) / 1e6:7.1f} MB p99 {pct(lags, .99) / 1e6:7.1f} MB"
                     f"  replay_lag p50 {pct(lag_secs, .5):6.3f} s p99 {pct(lag_secs, .99):6.3f} s"
                     f"  caught up {caught:5.2f} s after COPY" if mode != "none" else ""),
                  flush=True)
    print()
    print("| system | replica | commits/s (16 writers) | COPY orders rows/s | lag p50 / p99 (MB) | replay_lag p50 / p99 (s) | caught up after COPY (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, mode, tps, rate, lags, lag_secs, caught in results:
        lag = f"{pct(lags, .5) / 1e6:.1f} / {pct(lags, .99) / 1e6:.1f}" if mode != "none" else "-"
        secs = f"{pct(lag_secs, .5):.3f} / {pct(lag_secs, .99):.3f}" if mode != "none" else "-"
        print(f"| {name} | {mode} | {tps:.0f} | {rate:.0f} | {lag} | {secs} | {'-' if caught is None else f'{caught:.2f}'} |")


if __name__ == "__main__":
    main()
