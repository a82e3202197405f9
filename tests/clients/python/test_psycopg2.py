#!/usr/bin/env python3
"""psycopg2 against the server: parameters, type round trip, executemany,
copy_expert (CSV in and out), errors by pgcode, transactions.

Connection from the libpq environment: PGHOST, PGPORT, PGUSER, PGDATABASE.
Prints one line per passed check; exits 1 on the first failure, or with
CLIENT_TESTS_KEEP_GOING=1 runs on and reports every failure.
Tables are named after the client and dropped first, so the scripts can run
concurrently against one server.
"""

import datetime as dt
import io
import os
import sys
import uuid
from decimal import Decimal

try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extensions
    import psycopg2.extras
except ImportError:
    print("SKIPPED: psycopg2 not installed (pip install psycopg2-binary)")
    sys.exit(0)

PREFIX = "psycopg2_"
TYPES = PREFIX + "types"
ITEMS = PREFIX + "items"
COPY_T = PREFIX + "copy"
TX = PREFIX + "tx"
ERR_T = PREFIX + "errors"


from harness import CheckFailed, check, fail, finish, unexpected  # noqa: E402


def connect():
    return psycopg2.connect("")


# psycopg2 returns uuid as str unless registered; json/jsonb are parsed to
# Python objects by default.
psycopg2.extras.register_uuid()

COLUMNS = [
    # name, SQL type, python value to insert, expected python value read, type OID
    ("id", "integer PRIMARY KEY", 1, 1, 23),
    ("c_int2", "smallint", 32767, 32767, 21),
    ("c_int8", "bigint", -9007199254740993, -9007199254740993, 20),
    ("c_float4", "real", -0.25, -0.25, 700),
    ("c_float8", "double precision", 2.718281828459045, 2.718281828459045, 701),
    ("c_numeric", "numeric(12,2)", Decimal("9999999999.99"), Decimal("9999999999.99"), 1700),
    ("c_text", "text", "multi\nline 'quoted' \\ text ✓", "multi\nline 'quoted' \\ text ✓", 25),
    ("c_varchar", "varchar(20)", "varchar value", "varchar value", 1043),
    ("c_bool", "boolean", False, False, 16),
    ("c_date", "date", dt.date(1999, 12, 31), dt.date(1999, 12, 31), 1082),
    ("c_ts", "timestamp", dt.datetime(2000, 1, 1, 0, 0, 0, 1), dt.datetime(2000, 1, 1, 0, 0, 0, 1), 1114),
    ("c_tstz", "timestamptz",
     dt.datetime(2021, 3, 4, 5, 6, 7, 890000, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     dt.datetime(2021, 3, 4, 3, 6, 7, 890000, tzinfo=dt.timezone.utc), 1184),
    ("c_time", "time", dt.time(23, 59, 59, 999999), dt.time(23, 59, 59, 999999), 1083),
    ("c_interval", "interval", dt.timedelta(days=-1, seconds=30),
     dt.timedelta(days=-1, seconds=30), 1186),
    ("c_uuid", "uuid", uuid.UUID("12345678-1234-5678-1234-567812345678"),
     uuid.UUID("12345678-1234-5678-1234-567812345678"), 2950),
    ("c_json", "json", psycopg2.extras.Json({"x": [1, 2, {"y": None}]}),
     {"x": [1, 2, {"y": None}]}, 114),
    ("c_jsonb", "jsonb", psycopg2.extras.Json({"b": False, "n": 1.5}),
     {"b": False, "n": 1.5}, 3802),
    ("c_bytea", "bytea", psycopg2.Binary(b"\x00\xff\x10bytes"), b"\x00\xff\x10bytes", 17),
]
NAMES = [c[0] for c in COLUMNS]


def compare_row(label, got, expected):
    if got is None:
        fail(f"{label}: expected a row, got none")
    if len(got) != len(expected):
        fail(f"{label}: expected {len(expected)} columns, got {len(got)}")
    for name, g, e in zip(NAMES, got, expected):
        if isinstance(g, memoryview):
            g = bytes(g)
        if g != e or type(g) is not type(e):
            fail(f"{label}: column {name}: expected {e!r} ({type(e).__name__}), "
                 f"got {g!r} ({type(g).__name__})")
    print(f"ok - {label}")


def test_types(conn):
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {TYPES}")
    cur.execute(f"CREATE TABLE {TYPES} ({', '.join(f'{c[0]} {c[1]}' for c in COLUMNS)})")
    conn.commit()
    print("ok - create table with every type")

    insert = (f"INSERT INTO {TYPES} ({', '.join(NAMES)}) "
              f"VALUES ({', '.join(['%s'] * len(NAMES))})")
    cur.execute(insert, [c[2] for c in COLUMNS])
    cur.execute(insert, [2] + [None] * (len(COLUMNS) - 1))
    conn.commit()
    print("ok - insert values and NULLs with parameters")

    select = f"SELECT {', '.join(NAMES)} FROM {TYPES} WHERE id = %s"
    cur.execute(select, (1,))
    compare_row("round trip of every type", cur.fetchone(), [c[3] for c in COLUMNS])
    check("cursor.description type OIDs",
          [(d.name, d.type_code) for d in cur.description],
          [(c[0], c[4]) for c in COLUMNS])
    cur.execute(select, (2,))
    compare_row("round trip of NULLs", cur.fetchone(), [2] + [None] * (len(COLUMNS) - 1))

    # A named-parameter query and a query with a literal percent sign.
    cur.execute(f"SELECT c_text LIKE %(pattern)s, %(n)s::int * 2 FROM {TYPES} WHERE id = %(id)s",
                {"pattern": "multi%", "n": 21, "id": 1})
    check("named parameters", cur.fetchone(), (True, 42))
    cur.execute("SELECT '100%%'::text, %s", ("x",))
    check("escaped percent sign", cur.fetchone(), ("100%", "x"))
    conn.commit()


def test_executemany(conn):
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {ITEMS}")
    cur.execute(f"CREATE TABLE {ITEMS} (id integer PRIMARY KEY, name text, price numeric(12,2))")
    rows = [(i, f"item {i}", Decimal(i) / 4) for i in range(1, 21)]
    cur.executemany(f"INSERT INTO {ITEMS} (id, name, price) VALUES (%s, %s, %s)", rows)
    conn.commit()
    cur.execute(f"SELECT id, name, price FROM {ITEMS} ORDER BY id")
    check("executemany rows", cur.fetchall(),
          [(i, n, p.quantize(Decimal("0.01"))) for i, n, p in rows])
    psycopg2.extras.execute_values(
        cur, f"INSERT INTO {ITEMS} (id, name, price) VALUES %s",
        [(100, "ev one", Decimal("1.00")), (101, "ev two", None)])
    conn.commit()
    cur.execute(f"SELECT id, name, price FROM {ITEMS} WHERE id >= 100 ORDER BY id")
    check("execute_values (multi-row VALUES)", cur.fetchall(),
          [(100, "ev one", Decimal("1.00")), (101, "ev two", None)])
    cur.execute(f"SELECT count(*), sum(price) FROM {ITEMS}")
    check("aggregate after executemany", cur.fetchone(), (22, Decimal("53.50")))
    conn.commit()


CSV_DATA = (
    "1,plain,1.50,2024-01-01\n"
    '2,"quoted, with comma",-2.00,\n'
    '3,"with ""quotes""",,2000-02-29\n'
    "4,,0.01,1970-01-01\n"
)
CSV_ROWS = [
    (1, "plain", Decimal("1.50"), dt.date(2024, 1, 1)),
    (2, "quoted, with comma", Decimal("-2.00"), None),
    (3, 'with "quotes"', None, dt.date(2000, 2, 29)),
    (4, None, Decimal("0.01"), dt.date(1970, 1, 1)),
]


def create_copy_table(conn, rows=()):
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {COPY_T}")
    cur.execute(f"CREATE TABLE {COPY_T} (id integer PRIMARY KEY, name text, "
                "amount numeric(12,2), day date)")
    cur.executemany(f"INSERT INTO {COPY_T} VALUES (%s, %s, %s, %s)", rows)
    conn.commit()


def test_copy_from(conn):
    create_copy_table(conn)
    cur = conn.cursor()
    cur.copy_expert(f"COPY {COPY_T} (id, name, amount, day) FROM STDIN WITH (FORMAT csv)",
                    io.StringIO(CSV_DATA))
    check("copy_expert FROM STDIN rowcount", cur.rowcount, 4)
    conn.commit()
    cur.execute(f"SELECT id, name, amount, day FROM {COPY_T} ORDER BY id")
    check("copy_expert FROM STDIN (csv) rows", cur.fetchall(), CSV_ROWS)
    conn.commit()


def test_copy_to(conn):
    create_copy_table(conn, CSV_ROWS)  # rows inserted with INSERT, not COPY
    cur = conn.cursor()
    out = io.StringIO()
    cur.copy_expert(f"COPY (SELECT id, name, amount, day FROM {COPY_T} ORDER BY id) "
                    "TO STDOUT WITH (FORMAT csv, HEADER)", out)
    check("copy_expert TO STDOUT (csv, header)", out.getvalue(),
          "id,name,amount,day\n" + CSV_DATA)
    out = io.StringIO()
    cur.copy_expert(f"COPY {COPY_T} TO STDOUT", out)
    check("copy_expert TO STDOUT (text)", sorted(out.getvalue().splitlines()), [
        "1\tplain\t1.50\t2024-01-01",
        "2\tquoted, with comma\t-2.00\t\\N",
        '3\twith "quotes"\t\\N\t2000-02-29',
        "4\t\\N\t0.01\t1970-01-01",
    ])
    conn.commit()


def expect_pgcode(name, conn, sql, pgcode, params=None):
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
    except psycopg2.Error as e:
        check(f"{name}: pgcode", e.pgcode, pgcode)
    else:
        fail(f"{name}: expected an error with pgcode {pgcode}, got no error")
    conn.rollback()
    cur.execute("SELECT 1")
    check(f"{name}: connection works after rollback", cur.fetchone(), (1,))


def test_errors(conn):
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {ERR_T}")
    cur.execute(f"CREATE TABLE {ERR_T} (id integer PRIMARY KEY, name text)")
    cur.execute(f"INSERT INTO {ERR_T} VALUES (1, 'one')")
    conn.commit()
    expect_pgcode("unique violation", conn,
                  f"INSERT INTO {ERR_T} (id, name) VALUES (%s, %s)", "23505", (1, "dup"))
    expect_pgcode("undefined table", conn, "SELECT * FROM psycopg2_missing_table", "42P01")
    expect_pgcode("division by zero", conn, "SELECT 1 / 0", "22012")
    expect_pgcode("syntax error", conn, "SELEC 1", "42601")
    cur = conn.cursor()
    try:
        cur.execute(f"INSERT INTO {ERR_T} (id) VALUES (1)")
    except psycopg2.errors.UniqueViolation:
        print("ok - unique violation raises psycopg2.errors.UniqueViolation")
    else:
        fail("expected psycopg2.errors.UniqueViolation, got no error")
    conn.rollback()


def count_tx(conn, id_):
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM {TX} WHERE id = %s", (id_,))
    n = cur.fetchone()[0]
    conn.commit()
    return n


def test_transactions(conn):
    other = connect()
    other.autocommit = True
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {TX}")
    cur.execute(f"CREATE TABLE {TX} (id integer PRIMARY KEY, v text)")
    conn.commit()

    cur.execute(f"INSERT INTO {TX} VALUES (1, 'a')")
    check("transaction status in transaction", conn.get_transaction_status(),
          psycopg2.extensions.TRANSACTION_STATUS_INTRANS)
    check("uncommitted row invisible to another connection", count_tx(other, 1), 0)
    conn.commit()
    check("committed row visible to another connection", count_tx(other, 1), 1)

    cur.execute(f"INSERT INTO {TX} VALUES (2, 'b')")
    conn.rollback()
    check("rolled back row gone", count_tx(other, 2), 0)
    check("rolled back row gone (own connection)", count_tx(conn, 2), 0)

    with conn:  # commits on success
        conn.cursor().execute(f"INSERT INTO {TX} VALUES (3, 'c')")
    check("'with conn' block committed", count_tx(other, 3), 1)
    try:
        with conn:  # rolls back on exception
            conn.cursor().execute(f"INSERT INTO {TX} VALUES (4, 'd')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    check("'with conn' block rolled back on exception", count_tx(other, 4), 0)

    ocur = other.cursor()
    ocur.execute(f"INSERT INTO {TX} VALUES (5, 'auto')")
    check("autocommit status idle", other.get_transaction_status(),
          psycopg2.extensions.TRANSACTION_STATUS_IDLE)
    check("autocommit insert visible to other connection", count_tx(conn, 5), 1)
    other.close()


def test_scrollable_cursor(conn):
    """A named cursor declared SCROLL: scroll() back and to positions."""
    cur = conn.cursor("psycopg2_scroll", scrollable=True)
    cur.itersize = 2
    cur.execute("SELECT g FROM generate_series(1, 6) g")
    check("scrollable cursor: first rows", cur.fetchmany(3), [(1,), (2,), (3,)])
    cur.scroll(-2)
    check("scroll(-2) then fetchone", cur.fetchone(), (2,))
    cur.scroll(4, mode="absolute")
    check("scroll(4, absolute) then fetchone", cur.fetchone(), (5,))
    cur.scroll(0, mode="absolute")
    check("scroll(0, absolute) then fetchall", cur.fetchall(), [(g,) for g in range(1, 7)])
    cur.close()
    conn.rollback()


def main():
    try:
        conn = connect()
    except Exception as e:
        print(f"FAIL: connect: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok - connect (server_version {conn.server_version})")
    for test in (test_types, test_executemany, test_copy_from, test_copy_to,
                 test_errors, test_transactions, test_scrollable_cursor):
        try:
            test(conn)
        except Exception as e:
            unexpected(test.__name__, e)
            conn = recover(conn)
    conn.close()
    finish("psycopg2")


def recover(conn):
    """Keep-going mode: a clean connection for the next test."""
    try:
        conn.rollback()
        return conn
    except Exception:
        conn.close()
        return connect()


if __name__ == "__main__":
    main()
