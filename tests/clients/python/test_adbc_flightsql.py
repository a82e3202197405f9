#!/usr/bin/env python3
"""ADBC's Flight SQL driver against the server's Arrow Flight SQL endpoint,
through the DB-API as programs use it: cursor.execute (every statement
is sent as a query, DDL included), parameters, fetch_arrow_table,
fetch_df (pandas), polars.read_database over the same connection,
transactions (the DB-API default: autocommit off), adbc_get_objects,
adbc_get_table_schema, adbc_ingest (create, append, replace), errors.

The endpoint is grpc://127.0.0.1:$QUIVER_FLIGHT_PORT, user $PGUSER.
Prints one line per passed check; exits 1 on the first failure.
"""

import datetime as dt
import os
import sys
from decimal import Decimal

from harness import check, fail, finish

try:
    import adbc_driver_flightsql.dbapi as flight_sql
    import adbc_driver_manager
    import pyarrow as pa
except ImportError as e:
    print(f"SKIPPED: {e.name} not installed (pip install adbc-driver-flightsql pyarrow)")
    sys.exit(0)

URI = f"grpc://127.0.0.1:{os.environ['QUIVER_FLIGHT_PORT']}"
USER = os.environ.get("PGUSER", "quiver")


def connect(autocommit=False):
    return flight_sql.connect(
        URI, db_kwargs={"username": USER, "password": ""}, autocommit=autocommit
    )


conn = connect()
cur = conn.cursor()

# Statements take effect when executed, exactly once, though nobody
# fetches their results (ADBC sends each as a query).
cur.execute("DROP TABLE IF EXISTS adbc_items")
cur.execute(
    "CREATE TABLE adbc_items (id int PRIMARY KEY, name text NOT NULL, "
    "price numeric(10,2), seen timestamptz, day date)"
)
cur.execute(
    "INSERT INTO adbc_items VALUES "
    "(1, 'apple', 1.25, '2024-05-01 10:00:00+00', '2024-05-01'), "
    "(2, 'pear', NULL, NULL, NULL)"
)
conn.commit()

cur.execute("SELECT count(*) FROM adbc_items")
check("DDL and INSERT ran once", cur.fetchone(), (2,))

cur.execute("SELECT id, name, price, seen, day FROM adbc_items ORDER BY id")
table = cur.fetch_arrow_table()
check("rows", table.num_rows, 2)
check("column types", [str(t) for t in table.schema.types],
      ["int32", "string", "decimal128(10, 2)", 'timestamp[us, tz=UTC]', "date32[day]"])
check("values", table.to_pylist()[0],
      {"id": 1, "name": "apple", "price": Decimal("1.25"),
       "seen": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc),
       "day": dt.date(2024, 5, 1)})
check("description", [d[0] for d in cur.description], ["id", "name", "price", "seen", "day"])

# Parameters: ? placeholders, bound from Python values.
cur.execute("SELECT name FROM adbc_items WHERE id = ? AND name <> ?", parameters=(2, "x"))
check("? parameters", cur.fetchall(), [("pear",)])
cur.execute("SELECT $1::int + 1", parameters=(41,))
check("$1 parameter", cur.fetchone(), (42,))
cur.executemany("INSERT INTO adbc_items (id, name) VALUES (?, ?)", [(3, "plum"), (4, "fig")])
conn.commit()
cur.execute("SELECT count(*) FROM adbc_items")
check("executemany", cur.fetchone(), (4,))

# pandas and polars.
cur.execute("SELECT id, name FROM adbc_items ORDER BY id")
df = cur.fetch_df()
check("fetch_df", list(df["name"]), ["apple", "pear", "plum", "fig"])
try:
    import polars as pl

    frame = pl.read_database("SELECT id, name FROM adbc_items WHERE id > 2 ORDER BY id", conn)
    check("polars read_database", frame["name"].to_list(), ["plum", "fig"])
except ImportError:
    print("SKIPPED: polars not installed (pip install polars)")

# A transaction rolled back leaves nothing; a failed statement fails it.
cur.execute("INSERT INTO adbc_items (id, name) VALUES (5, 'kiwi')")
conn.rollback()
cur.execute("SELECT count(*) FROM adbc_items WHERE id = 5")
check("rollback", cur.fetchone(), (0,))
try:
    cur.execute("INSERT INTO adbc_items (id, name) VALUES (1, 'again')")
    cur.fetchall()
    fail("a duplicate key should fail")
except adbc_driver_manager.Error as e:
    check("duplicate key names its SQLSTATE", "23505" in str(e), True)
conn.rollback()

try:
    cur.execute("SELECT * FROM adbc_missing")
    cur.fetchall()
    fail("a missing table should fail")
except adbc_driver_manager.Error as e:
    check("missing table", "42P01" in str(e) and "adbc_missing" in str(e), True)
conn.rollback()

# Catalog calls, without filters (as ADBC sends them).
objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
check("one catalog", [o["catalog_name"] for o in objects], ["quiver"])
public = [s for s in objects[0]["catalog_db_schemas"] if s["db_schema_name"] == "public"][0]
items = [t for t in public["db_schema_tables"] if t["table_name"] == "adbc_items"][0]
check("get_objects columns", [c["column_name"] for c in items["table_columns"]],
      ["id", "name", "price", "seen", "day"])
schema = conn.adbc_get_table_schema("adbc_items")
check("get_table_schema", (schema.names, str(schema.field("name").type), schema.field("name").nullable),
      (["id", "name", "price", "seen", "day"], "string", False))
info = conn.adbc_get_info()
check("vendor", info["vendor_name"], "QuiverDB")

# Bulk ingest: create, append, replace.
data = pa.table({
    "k": pa.array(range(10_000), pa.int64()),
    "label": pa.array([f"row {i}" if i % 3 else None for i in range(10_000)]),
    "at": pa.array([dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i) for i in range(10_000)],
                   pa.timestamp("ns")),
})
cur.execute("DROP TABLE IF EXISTS adbc_ingested")
conn.commit()
check("ingest create", cur.adbc_ingest("adbc_ingested", data, mode="create"), 10_000)
check("ingest append", cur.adbc_ingest("adbc_ingested", data.slice(0, 100), mode="append"), 100)
conn.commit()
cur.execute("SELECT count(*), count(label), max(at) FROM adbc_ingested")
check("ingested rows", cur.fetchone(), (10_100, 6_666 + 66, dt.datetime(2024, 1, 1, 2, 46, 39)))
check("ingest replace", cur.adbc_ingest("adbc_ingested", data.slice(0, 10), mode="replace"), 10)
conn.commit()
cur.execute("SELECT count(*) FROM adbc_ingested")
check("replaced", cur.fetchone(), (10,))

cur.close()
conn.close()

# Autocommit: each statement commits on its own.
auto = connect(autocommit=True)
c = auto.cursor()
c.execute("INSERT INTO adbc_items (id, name) VALUES (6, 'lime')")
c.close()
auto.close()
again = connect()
c = again.cursor()
c.execute("SELECT name FROM adbc_items WHERE id = 6")
check("autocommit", c.fetchall(), [("lime",)])
c.execute("DROP TABLE adbc_items")
c.execute("DROP TABLE adbc_ingested")
again.commit()
c.close()
again.close()

finish("adbc_flightsql")
