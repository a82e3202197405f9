"""Compares the answers of the 22 TPC-H queries from a running QuiverDB
server with DuckDB's on the same data, value by value (numbers within a
relative 1e-9), and exits non-zero on any difference:

    PORT=5432 python3 benches/compare_answers.py target/bench-data/sf1

The directory holds the Parquet files examples/bench.rs writes; the server
must hold the same tables."""

import datetime
import decimal
import math
import os
import sys

import duckdb
import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = ["nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem"]


def norm(v):
    if isinstance(v, (decimal.Decimal, float, int)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, datetime.datetime):
        return v.replace(tzinfo=None)
    return v


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def main():
    data = sys.argv[1]
    duck = duckdb.connect()
    for t in TABLES:
        duck.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{data}/{t}.parquet')")
    port = os.environ.get("PORT", "5432")
    quiver = psycopg.connect(f"host=127.0.0.1 port={port} user=quiver dbname=quiver", autocommit=True)
    differ = 0
    for q in range(1, 23):
        sql = open(os.path.join(HERE, "tpch", f"q{q}.sql")).read()
        expected = [tuple(map(norm, r)) for r in duck.execute(sql).fetchall()]
        got = [tuple(map(norm, r)) for r in quiver.execute(sql).fetchall()]
        ok = len(expected) == len(got) and all(
            len(e) == len(g) and all(same(x, y) for x, y in zip(e, g))
            for e, g in zip(expected, got)
        )
        differ += not ok
        print(f"Q{q}", "same" if ok else f"DIFFERENT ({len(got)} rows, DuckDB {len(expected)})")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
