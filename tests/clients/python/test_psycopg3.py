#!/usr/bin/env python3
"""psycopg 3 against the server: types in text and binary format, prepared
statements, executemany, COPY (text, csv, binary), errors, transactions.

Connection from the libpq environment: PGHOST, PGPORT, PGUSER, PGDATABASE.
Prints one line per passed check; exits 1 on the first failure, or with
CLIENT_TESTS_KEEP_GOING=1 runs on and reports every failure.
Tables are named after the client and dropped first, so the scripts can run
concurrently against one server.
"""

import datetime as dt
import os
import sys
import uuid
from decimal import Decimal

try:
    import psycopg
    from psycopg import errors
    from psycopg.types.json import Json, Jsonb
except ImportError:
    print('SKIPPED: psycopg not installed (pip install "psycopg[binary]")')
    sys.exit(0)

PREFIX = "psycopg3_"
TYPES = PREFIX + "types"
ITEMS = PREFIX + "items"
COPY_T = PREFIX + "copy"
COPY_B = PREFIX + "copy_bin"
TX = PREFIX + "tx"
ERR_T = PREFIX + "errors"
ARR = PREFIX + "arrays"


from harness import CheckFailed, check, fail, finish, unexpected  # noqa: E402


def expect_error(name, conn, sql, exc_class, sqlstate, params=None):
    """Runs sql expecting exc_class; rolls back; the connection must still work."""
    try:
        conn.execute(sql, params)
    except exc_class as e:
        check(f"{name}: sqlstate", e.sqlstate, sqlstate)
    except psycopg.Error as e:
        fail(f"{name}: expected {exc_class.__name__}, got {type(e).__name__} "
             f"(sqlstate {e.sqlstate}): {e}")
    else:
        fail(f"{name}: expected {exc_class.__name__}, got no error")
    conn.rollback()
    check(f"{name}: connection works after rollback",
          conn.execute("SELECT 1").fetchone(), (1,))


def connect(**kwargs):
    return psycopg.connect("", **kwargs)


# --- types -----------------------------------------------------------------

COLUMNS = [
    # name, SQL type, python value, expected type OID in cursor.description
    ("id", "integer PRIMARY KEY", 1, 23),
    ("c_int2", "smallint", -32768, 21),
    ("c_int8", "bigint", 9007199254740993, 20),
    ("c_float4", "real", 1.5, 700),
    ("c_float8", "double precision", 3.141592653589793, 701),
    ("c_numeric", "numeric(12,2)", Decimal("-1234567890.12"), 1700),
    ("c_text", "text", "héllo, 'world'\n\t\\ end", 25),
    ("c_varchar", "varchar(20)", "short text", 1043),
    ("c_bool", "boolean", True, 16),
    ("c_date", "date", dt.date(2024, 2, 29), 1082),
    ("c_ts", "timestamp", dt.datetime(2024, 2, 29, 13, 14, 15, 123456), 1114),
    ("c_tstz", "timestamptz",
     dt.datetime(2024, 7, 1, 23, 59, 58, 654321, tzinfo=dt.timezone.utc), 1184),
    ("c_time", "time", dt.time(13, 14, 15, 161718), 1083),
    ("c_interval", "interval",
     dt.timedelta(days=3, hours=4, minutes=5, seconds=6, microseconds=7), 1186),
    ("c_uuid", "uuid", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), 2950),
    ("c_json", "json", {"a": 1, "b": [True, None, "x"]}, 114),
    ("c_jsonb", "jsonb", {"k": {"nested": 2.5}, "list": [1, 2]}, 3802),
    ("c_bytea", "bytea", b"\x00\x01\xfe\xffabc\\'", 17),
]
NAMES = [c[0] for c in COLUMNS]
SELECT_ALL = f"SELECT {', '.join(NAMES)} FROM {TYPES} WHERE id = %s"


def adapt(name, value):
    if value is None:
        return None
    if name == "c_json":
        return Json(value)
    if name == "c_jsonb":
        return Jsonb(value)
    return value


def full_row(id_):
    return tuple([id_] + [c[2] for c in COLUMNS[1:]])


def null_row(id_):
    return tuple([id_] + [None] * (len(COLUMNS) - 1))


def insert_types(conn, row):
    placeholders = ", ".join(["%s"] * len(NAMES))
    conn.execute(
        f"INSERT INTO {TYPES} ({', '.join(NAMES)}) VALUES ({placeholders})",
        [adapt(n, v) for n, v in zip(NAMES, row)],
    )


def compare_row(label, got, expected):
    """Compares a whole row column by column; prints one line for the row."""
    if got is None:
        fail(f"{label}: expected a row, got none")
    if len(got) != len(expected):
        fail(f"{label}: expected {len(expected)} columns, got {len(got)}")
    for name, g, e in zip(NAMES, got, expected):
        if g != e or type(g) is not type(e):
            fail(f"{label}: column {name}: expected {e!r} ({type(e).__name__}), "
                 f"got {g!r} ({type(g).__name__})")
        if name == "c_tstz" and e is not None and g.tzinfo is None:
            fail(f"{label}: column c_tstz: expected a timezone-aware datetime, got {g!r}")
    print(f"ok - {label}")


def test_types(conn):
    conn.execute(f"DROP TABLE IF EXISTS {TYPES}")
    ddl = ", ".join(f"{n} {t}" for n, t, _, _ in COLUMNS)
    conn.execute(f"CREATE TABLE {TYPES} ({ddl})")
    conn.commit()
    print("ok - create table with every type")

    insert_types(conn, full_row(1))
    insert_types(conn, null_row(2))
    conn.commit()
    print("ok - insert values and NULLs with parameters")

    cur = conn.cursor()
    cur.execute(SELECT_ALL, (1,))
    compare_row("text format, values", cur.fetchone(), full_row(1))
    cur.execute(SELECT_ALL, (2,))
    compare_row("text format, NULLs", cur.fetchone(), null_row(2))

    bcur = conn.cursor(binary=True)
    bcur.execute(SELECT_ALL, (1,))
    compare_row("binary format, values", bcur.fetchone(), full_row(1))
    bcur.execute(SELECT_ALL, (2,))
    compare_row("binary format, NULLs", bcur.fetchone(), null_row(2))

    # Binary parameters too.
    bcur.execute(f"DELETE FROM {TYPES} WHERE id = %b", (1,))
    placeholders = ", ".join(["%b"] * len(NAMES))
    bcur.execute(
        f"INSERT INTO {TYPES} ({', '.join(NAMES)}) VALUES ({placeholders})",
        [adapt(n, v) for n, v in zip(NAMES, full_row(3))],
    )
    conn.commit()
    cur.execute(SELECT_ALL, (3,))
    compare_row("binary parameters, text read", cur.fetchone(), full_row(3))

    cur.execute(SELECT_ALL, (3,))
    got = [(d.name, d.type_code) for d in cur.description]
    check("cursor.description names and type OIDs", got,
          [(n, oid) for n, _, _, oid in COLUMNS])
    check("varchar(20) display size", cur.description[NAMES.index("c_varchar")].display_size, 20)
    num = cur.description[NAMES.index("c_numeric")]
    check("numeric(12,2) precision/scale", (num.precision, num.scale), (12, 2))
    cur.fetchall()

    cur.execute(f"SELECT count(*) FROM {TYPES} WHERE c_text IS NULL")
    check("count(*) of NULL rows", cur.fetchone(), (1,))
    conn.commit()


def test_literals(conn):
    row = conn.execute(
        "SELECT %s::int + 1, %s::text || 'b', %s::numeric * 2, %s::date, %s",
        (41, "a", Decimal("1.25"), "2020-01-02", None),
    ).fetchone()
    check("expressions on parameters", row,
          (42, "ab", Decimal("2.50"), dt.date(2020, 1, 2), None))
    conn.rollback()
    # Python prints some Decimals with an exponent (1E+2, 0E-8), and
    # psycopg sends them so; Postgres reads them.
    row = conn.execute(
        "SELECT %s::numeric(10,2), %s::numeric(12,8), %s::numeric(10,4)",
        (Decimal("1E+2"), Decimal("0E-8"), Decimal("-1.5E-3")),
    ).fetchone()
    check("Decimal parameters written with an exponent", row,
          (Decimal("100.00"), Decimal("0E-8"), Decimal("-0.0015")))
    conn.rollback()


def test_numbers_against_numerics(conn):
    # psycopg sends a Python int as int2/int4/int8 and a float as float8;
    # against a numeric column they were refused ("Cannot coerce integer
    # value to Decimal128").
    conn.execute("DROP TABLE IF EXISTS py_amounts")
    conn.execute("CREATE TABLE py_amounts (id int PRIMARY KEY, amount numeric(10,2))")
    conn.execute("INSERT INTO py_amounts VALUES (%s, %s), (%s, %s), (%s, %s)",
                 (1, 5, 2, 100, 3, Decimal("100.75")))
    conn.commit()
    for prepare in (False, True):
        row = conn.execute("SELECT count(*) FROM py_amounts WHERE amount > %s",
                           (99,), prepare=prepare).fetchone()
        check(f"numeric > int parameter (prepare={prepare})", row, (2,))
        row = conn.execute("SELECT count(*) FROM py_amounts WHERE amount > %s",
                           (100.5,), prepare=prepare).fetchone()
        check(f"numeric > float parameter (prepare={prepare})", row, (1,))
    row = conn.execute("SELECT amount FROM py_amounts WHERE id = 1").fetchone()
    check("int parameter stored in a numeric column", row, (Decimal("5.00"),))
    # A float the column's scale cannot hold would be rounded: refused.
    expect_error("float parameter past the numeric's scale", conn,
                 "SELECT count(*) FROM py_amounts WHERE amount > %s",
                 psycopg.errors.InvalidTextRepresentation, "22P02", (100.555,))
    # A Decimal for an integer column was cut to an integer (5.5 found 5).
    row = conn.execute("SELECT count(*) FROM py_amounts WHERE id = %s",
                       (Decimal("2"),)).fetchone()
    check("integral Decimal parameter for an integer column", row, (1,))
    expect_error("fractional Decimal parameter for an integer column", conn,
                 "SELECT count(*) FROM py_amounts WHERE id = %s",
                 psycopg.errors.InvalidTextRepresentation, "22P02", (Decimal("2.5"),))
    conn.execute("DROP TABLE py_amounts")
    conn.commit()


def test_prepared(conn):
    conn.execute(f"DROP TABLE IF EXISTS {ITEMS}")
    conn.execute(f"CREATE TABLE {ITEMS} (id integer PRIMARY KEY, name text, qty bigint)")
    conn.commit()
    for i in range(1, 8):
        conn.execute(f"INSERT INTO {ITEMS} (id, name, qty) VALUES (%s, %s, %s)",
                     (i, f"item{i}", i * 10), prepare=True)
    conn.commit()
    for i in range(1, 8):
        row = conn.execute(f"SELECT name, qty FROM {ITEMS} WHERE id = %s",
                           (i,), prepare=True).fetchone()
        if row != (f"item{i}", i * 10):
            fail(f"prepared select #{i}: expected {(f'item{i}', i * 10)!r}, got {row!r}")
    print("ok - prepare=True insert and select repeated 7 times")
    bcur = conn.cursor(binary=True)
    for i in (1, 2, 3):
        bcur.execute(f"SELECT name, qty FROM {ITEMS} WHERE id = %s", (i,), prepare=True)
        check(f"prepared binary select #{i}", bcur.fetchone(), (f"item{i}", i * 10))
    conn.commit()


def test_executemany(conn):
    cur = conn.cursor()
    rows = [(i, f"many{i}", None if i % 2 else i) for i in range(100, 110)]
    cur.executemany(f"INSERT INTO {ITEMS} (id, name, qty) VALUES (%s, %s, %s)", rows)
    conn.commit()
    got = conn.execute(f"SELECT id, name, qty FROM {ITEMS} WHERE id >= 100 ORDER BY id").fetchall()
    check("executemany inserted rows", got, rows)
    cur.executemany(f"UPDATE {ITEMS} SET qty = %s WHERE id = %s", [(1, 100), (2, 101)])
    conn.commit()
    got = conn.execute(f"SELECT qty FROM {ITEMS} WHERE id IN (100, 101) ORDER BY id").fetchall()
    check("executemany update", got, [(1,), (2,)])
    cur.executemany(f"SELECT name FROM {ITEMS} WHERE id = %s", [(100,), (101,)],
                    returning=True)
    results = []
    while True:
        results.append(cur.fetchall())
        if not cur.nextset():
            break
    check("executemany returning results", results, [[("many100",)], [("many101",)]])
    conn.commit()


# --- COPY ------------------------------------------------------------------

COPY_ROWS = [
    (1, "alpha", Decimal("1.50"), dt.date(2024, 1, 1)),
    (2, "with\ttab and \\ backslash", Decimal("-2.25"), None),
    (3, None, None, dt.date(1999, 12, 31)),
    (4, 'quote " and, comma', Decimal("1000000.00"), dt.date(2000, 2, 29)),
]


def create_copy_table(conn, rows=()):
    conn.execute(f"DROP TABLE IF EXISTS {COPY_T}")
    conn.execute(f"CREATE TABLE {COPY_T} (id integer PRIMARY KEY, name text, "
                 "amount numeric(12,2), day date)")
    conn.cursor().executemany(f"INSERT INTO {COPY_T} VALUES (%s, %s, %s, %s)", rows)
    conn.commit()


def test_copy_from_text(conn):
    create_copy_table(conn)
    with conn.cursor().copy(f"COPY {COPY_T} FROM STDIN") as copy:
        for row in COPY_ROWS:
            copy.write_row(row)
    conn.commit()
    got = conn.execute(f"SELECT id, name, amount, day FROM {COPY_T} ORDER BY id").fetchall()
    check("COPY FROM STDIN (text) rows", got, COPY_ROWS)
    conn.commit()


def test_copy_to_text(conn):
    create_copy_table(conn, COPY_ROWS)  # rows inserted with INSERT, not COPY
    cur = conn.cursor()
    with cur.copy(f"COPY {COPY_T} TO STDOUT") as copy:
        got = sorted(copy.rows(), key=lambda r: int(r[0]))
    expected = [tuple(None if v is None else str(v) for v in r) for r in COPY_ROWS]
    check("COPY TO STDOUT (text) rows as strings", got, expected)

    with cur.copy(f"COPY {COPY_T} (id, name, amount, day) TO STDOUT") as copy:
        copy.set_types(["int4", "text", "numeric", "date"])
        got = sorted(copy.rows())
    check("COPY TO STDOUT (text) with set_types", got, COPY_ROWS)
    conn.commit()


def test_copy_to_csv(conn):
    create_copy_table(conn, COPY_ROWS)
    with conn.cursor().copy(f"COPY (SELECT id, name, amount FROM {COPY_T} ORDER BY id) "
                            "TO STDOUT (FORMAT csv, HEADER)") as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    expected_csv = (
        'id,name,amount\n'
        '1,alpha,1.50\n'
        '2,with\ttab and \\ backslash,-2.25\n'
        '3,,\n'
        '4,"quote "" and, comma",1000000.00\n'
    )
    check("COPY (SELECT) TO STDOUT (FORMAT csv, HEADER) raw data",
          data.decode(), expected_csv)
    conn.commit()


BIN_TS = dt.datetime(2023, 5, 6, 7, 8, 9, 100000, tzinfo=dt.timezone.utc)
BIN_ROWS = [
    (1, "one", Decimal("1.10"), dt.date(2024, 1, 1), BIN_TS, 2**40, True),
    (2, None, None, None, None, None, None),
    (3, "three", Decimal("-3.33"), dt.date(1970, 1, 1), BIN_TS, -5, False),
]
BIN_TYPES = ["int4", "text", "numeric", "date", "timestamptz", "int8", "bool"]
BIN_COLS = "id, name, amount, day, ts, big, ok"


def create_copy_bin_table(conn, rows=()):
    conn.execute(f"DROP TABLE IF EXISTS {COPY_B}")
    conn.execute(f"CREATE TABLE {COPY_B} (id integer PRIMARY KEY, name text, "
                 "amount numeric(12,2), day date, ts timestamptz, big bigint, ok boolean)")
    conn.cursor().executemany(f"INSERT INTO {COPY_B} ({BIN_COLS}) "
                              "VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    conn.commit()


def test_copy_from_binary(conn):
    create_copy_bin_table(conn)
    with conn.cursor().copy(f"COPY {COPY_B} ({BIN_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(BIN_TYPES)
        for row in BIN_ROWS:
            copy.write_row(row)
    conn.commit()
    got = conn.execute(f"SELECT {BIN_COLS} FROM {COPY_B} ORDER BY id").fetchall()
    check("COPY FROM STDIN (FORMAT BINARY) rows", got, BIN_ROWS)
    conn.commit()


def test_copy_from_binary_without_trailer(conn):
    """pgx's CopyFrom ends its binary data without the -1 trailer; as in
    PostgreSQL, the end of the data ends the rows."""
    import struct
    create_copy_bin_table(conn)
    data = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
    for i in (1, 2):
        data += struct.pack("!h", 1) + struct.pack("!ii", 4, i)
    with conn.cursor().copy(f"COPY {COPY_B} (id) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(data)
    conn.commit()
    got = conn.execute(f"SELECT id FROM {COPY_B} ORDER BY id").fetchall()
    check("COPY FROM STDIN (FORMAT BINARY) without the trailer", got, [(1,), (2,)])
    conn.commit()


def test_copy_to_binary(conn):
    create_copy_bin_table(conn, BIN_ROWS)
    with conn.cursor().copy(f"COPY {COPY_B} ({BIN_COLS}) TO STDOUT (FORMAT BINARY)") as copy:
        copy.set_types(BIN_TYPES)
        got = sorted(copy.rows(), key=lambda r: r[0])
    check("COPY TO STDOUT (FORMAT BINARY) rows", got, BIN_ROWS)
    conn.commit()


# --- errors ----------------------------------------------------------------

def test_errors(conn):
    conn.execute(f"DROP TABLE IF EXISTS {ERR_T}")
    conn.execute(f"CREATE TABLE {ERR_T} (id integer PRIMARY KEY, name text)")
    conn.execute(f"INSERT INTO {ERR_T} VALUES (1, 'one')")
    conn.commit()
    expect_error("unique violation", conn,
                 f"INSERT INTO {ERR_T} (id, name) VALUES (%s, %s)",
                 errors.UniqueViolation, "23505", (1, "dup"))
    expect_error("undefined table", conn, "SELECT * FROM psycopg3_no_such_table",
                 errors.UndefinedTable, "42P01")
    expect_error("division by zero", conn, "SELECT 1 / 0",
                 errors.DivisionByZero, "22012")
    expect_error("syntax error", conn, "SELEC 1",
                 errors.SyntaxError, "42601")
    # The error aborts the transaction: further statements fail until rollback.
    conn.execute("SELECT 1")
    try:
        conn.execute("SELECT 1 / 0")
    except errors.DivisionByZero:
        pass
    try:
        conn.execute("SELECT 1")
    except errors.InFailedSqlTransaction as e:
        check("statement in aborted transaction: sqlstate", e.sqlstate, "25P02")
    else:
        fail("statement in aborted transaction: expected InFailedSqlTransaction, got no error")
    conn.rollback()
    check("connection works after aborted transaction",
          conn.execute("SELECT 2").fetchone(), (2,))
    conn.commit()


# --- transactions ----------------------------------------------------------

class Boom(Exception):
    pass


def count_tx(conn, id_):
    return conn.execute(f"SELECT count(*) FROM {TX} WHERE id = %s", (id_,)).fetchone()[0]


def test_transactions(conn):
    other = connect(autocommit=True)
    conn.execute(f"DROP TABLE IF EXISTS {TX}")
    conn.execute(f"CREATE TABLE {TX} (id integer PRIMARY KEY, v text)")
    conn.commit()

    check("transaction status idle", conn.info.transaction_status,
          psycopg.pq.TransactionStatus.IDLE)
    with conn.transaction():
        conn.execute(f"INSERT INTO {TX} VALUES (1, 'committed')")
        check("transaction status in block", conn.info.transaction_status,
              psycopg.pq.TransactionStatus.INTRANS)
        check("uncommitted row invisible to another connection", count_tx(other, 1), 0)
        check("own uncommitted row visible", count_tx(conn, 1), 1)
    check("committed row visible to another connection", count_tx(other, 1), 1)

    try:
        with conn.transaction():
            conn.execute(f"INSERT INTO {TX} VALUES (2, 'rolled back')")
            raise Boom()
    except Boom:
        pass
    check("row rolled back after exception in block", count_tx(other, 2), 0)
    check("row rolled back, seen by own connection", count_tx(conn, 2), 0)
    conn.commit()

    # Nested block: a savepoint.
    with conn.transaction():
        conn.execute(f"INSERT INTO {TX} VALUES (3, 'outer')")
        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO {TX} VALUES (4, 'inner')")
                raise Boom()
        except Boom:
            pass
    check("nested block: outer row committed", count_tx(other, 3), 1)
    check("nested block: inner row rolled back", count_tx(other, 4), 0)

    # Explicit commit() / rollback() in non-autocommit mode.
    conn.execute(f"INSERT INTO {TX} VALUES (5, 'x')")
    conn.rollback()
    check("conn.rollback() discards insert", count_tx(other, 5), 0)
    conn.execute(f"INSERT INTO {TX} VALUES (6, 'y')")
    conn.commit()
    check("conn.commit() keeps insert", count_tx(other, 6), 1)
    conn.commit()

    # Autocommit mode: each statement is visible at once.
    check("autocommit flag", other.autocommit, True)
    other.execute(f"INSERT INTO {TX} VALUES (7, 'auto')")
    check("autocommit insert: status idle", other.info.transaction_status,
          psycopg.pq.TransactionStatus.IDLE)
    check("autocommit insert visible to other connection", count_tx(conn, 7), 1)
    conn.commit()
    with other.transaction():
        other.execute(f"INSERT INTO {TX} VALUES (8, 'auto block')")
        check("autocommit conn in transaction block: INTRANS",
              other.info.transaction_status, psycopg.pq.TransactionStatus.INTRANS)
    check("transaction block on autocommit connection committed", count_tx(conn, 8), 1)
    conn.commit()
    other.close()


def test_session_time_zone(conn):
    """psycopg reads timestamptz in the session's zone (text and binary)
    and sends aware datetimes with their offset; the zone is also taken
    from the connection's `options`."""
    zoned = connect(options="-c TimeZone=Europe/Berlin")
    try:
        berlin = dt.timezone(dt.timedelta(hours=1))
        summer = dt.timezone(dt.timedelta(hours=2))
        row = zoned.execute("SHOW TimeZone").fetchone()
        check("TimeZone from options", row[0], "Europe/Berlin")
        for binary in (False, True):
            cur = zoned.cursor(binary=binary)
            got = cur.execute(
                "SELECT '2024-01-15 10:00'::timestamptz, '2024-07-15 10:00'::timestamptz,"
                " '2024-01-15 10:00+00'::timestamptz::timestamp").fetchone()
            label = "binary" if binary else "text"
            check(f"winter local time ({label})", got[0],
                  dt.datetime(2024, 1, 15, 10, 0, tzinfo=berlin))
            check(f"summer local time ({label})", got[1],
                  dt.datetime(2024, 7, 15, 10, 0, tzinfo=summer))
            check(f"timestamptz::timestamp is local ({label})", got[2],
                  dt.datetime(2024, 1, 15, 11, 0))
        # An aware datetime parameter is the instant it names.
        instant = dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.timezone.utc)
        got = zoned.execute(
            "SELECT %s::timestamptz::text, date_trunc('day', %s::timestamptz)",
            (instant, instant)).fetchone()
        check("parameter shown in the zone", got[0], "2024-03-31 03:30:00+02")
        check("day truncated in the zone", got[1],
              dt.datetime(2024, 3, 31, 0, 0, tzinfo=berlin))
        zoned.execute("SET TIME ZONE 'America/New_York'")
        got = zoned.execute("SELECT %s::timestamptz", (instant,)).fetchone()[0]
        check("same instant after SET TIME ZONE", got, instant)
        check("shown in the new zone", got.utcoffset(), dt.timedelta(hours=-4))
    finally:
        zoned.close()


def test_named_cursor(conn):
    """A server-side cursor (DECLARE/FETCH): rows come in pieces."""
    with conn.transaction():
        conn.execute("DROP TABLE IF EXISTS psycopg3_big")
        conn.execute("CREATE TABLE psycopg3_big AS SELECT g AS id, 'row ' || g AS note "
                     "FROM generate_series(1, 200000) g")
    with conn.cursor(name="psycopg3_named") as cur:
        cur.itersize = 5000
        cur.execute("SELECT id, note FROM psycopg3_big WHERE id > %s ORDER BY id", [100])
        check("named cursor: description", [d.name for d in cur.description], ["id", "note"])
        first = cur.fetchmany(3)
        check("named cursor: fetchmany", first, [(101, "row 101"), (102, "row 102"), (103, "row 103")])
        rest = sum(1 for _ in cur)
        check("named cursor: the rest by iteration", rest, 200000 - 103)
    conn.commit()
    with conn.cursor(name="psycopg3_held", withhold=True) as cur:
        cur.execute("SELECT count(*) FROM psycopg3_big")
        conn.commit()
        check("WITH HOLD cursor outlives its transaction", cur.fetchone(), (200000,))
    # binary=True sends each FETCH through the extended protocol with
    # binary results; scroll() sends MOVE the same way.
    with conn.cursor(name="psycopg3_binary", binary=True, scrollable=True) as cur:
        cur.execute("SELECT id, note FROM psycopg3_big ORDER BY id")
        check("binary named cursor: fetchmany", cur.fetchmany(2), [(1, "row 1"), (2, "row 2")])
        cur.scroll(10)
        check("binary named cursor: scroll forward", cur.fetchone(), (13, "row 13"))
        cur.scroll(-3)
        check("binary named cursor: scroll back", cur.fetchone(), (11, "row 11"))
        cur.scroll(0, mode="absolute")
        check("binary named cursor: absolute", cur.fetchone(), (1, "row 1"))
    conn.commit()
    with conn.transaction():
        conn.execute("DECLARE psycopg3_bin BINARY CURSOR FOR "
                     "SELECT id, note FROM psycopg3_big ORDER BY id")
        cur = conn.execute("FETCH 2 FROM psycopg3_bin")
        check("BINARY cursor: FETCH answers in binary",
              [c.format for c in cur.pgresult_columns()] if hasattr(cur, "pgresult_columns")
              else [cur.pgresult.fformat(i) for i in range(cur.pgresult.nfields)], [1, 1])
        check("BINARY cursor: rows", cur.fetchall(), [(1, "row 1"), (2, "row 2")])
    conn.execute("DROP TABLE psycopg3_big")
    conn.commit()


def test_listen_notify(conn):
    """Connection.notifies() receives what another connection NOTIFYs,
    after its commit, while this one waits idle."""
    listener = connect(autocommit=True)
    listener.execute("LISTEN psycopg_events")
    sender = connect(autocommit=True)
    sender.execute("NOTIFY psycopg_events, 'one'")
    with sender.transaction():
        sender.execute("SELECT pg_notify('psycopg_events', 'two')")
    got = list(listener.notifies(timeout=5, stop_after=2))
    check("listen/notify: notifies() receives both, in order",
          [(n.channel, n.payload) for n in got], [("psycopg_events", "one"), ("psycopg_events", "two")])
    check("listen/notify: each names the sender's pid",
          {n.pid for n in got}, {sender.info.backend_pid})
    listener.execute("UNLISTEN *")
    sender.execute("NOTIFY psycopg_events, 'unheard'")
    check("listen/notify: nothing after UNLISTEN *",
          [n.payload for n in listener.notifies(timeout=0.5)], [])
    listener.close()
    sender.close()


def test_arrays(conn):
    """Python lists as array parameters (text and binary), array columns
    read back as lists, ANY/@> over parameters, COPY of arrays."""
    conn.execute(f"DROP TABLE IF EXISTS {ARR}")
    conn.execute(f"CREATE TABLE {ARR} (id int, a int[], t text[], n numeric(8,2)[], "
                 "u uuid[], d date[], b bool[], f float8[])")
    u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    row = ([1, None, 3], ["a,b", 'q"x', None, "", "NULL", "x\\y"], [Decimal("1.25")],
           [u], [dt.date(2024, 1, 2)], [True, None], [1.5, -0.25])
    for id_, binary in ((1, False), (2, True)):
        cur = conn.cursor(binary=binary)
        cur.execute(f"INSERT INTO {ARR} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", (id_,) + row)
        cur.execute(f"SELECT a, t, n, u, d, b, f FROM {ARR} WHERE id = %s", (id_,))
        check(f"arrays round trip ({'binary' if binary else 'text'})", cur.fetchone(), row)
        cur.execute(f"SELECT id FROM {ARR} WHERE %s = ANY(a) ORDER BY id", (3,))
        check(f"value = ANY(array column) ({'binary' if binary else 'text'})",
              cur.fetchall(), [(i,) for i in range(1, id_ + 1)])
        cur.execute(f"SELECT id FROM {ARR} WHERE id = ANY(%s) ORDER BY id", ([2, 5],))
        check(f"column = ANY(list parameter) ({'binary' if binary else 'text'})",
              cur.fetchall(), [(2,)] if id_ == 2 else [])
        cur.execute(f"SELECT count(*) FROM {ARR} WHERE a @> %s::int[]", ([1, 3],))
        check(f"array @> list parameter ({'binary' if binary else 'text'})", cur.fetchone(), (id_,))
        cur.execute("SELECT %s::int[], %s::text[]", ([], [None]))
        check(f"empty and all-NULL arrays ({'binary' if binary else 'text'})",
              cur.fetchone(), ([], [None]))
    with conn.cursor() as cur:
        with cur.copy(f"COPY {ARR} (id, a, t) TO STDOUT") as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        check("COPY TO of arrays (text)", data.splitlines()[0],
              b'1\t{1,NULL,3}\t{"a,b","q\\\\"x",NULL,"","NULL","x\\\\\\\\y"}')
        with cur.copy(f"COPY {ARR} (id, a, t) FROM STDIN") as copy:
            copy.write_row((3, [7, None], ["p q", None]))
        cur.execute(f"SELECT a, t FROM {ARR} WHERE id = 3")
        check("COPY FROM of arrays (text)", cur.fetchone(), ([7, None], ["p q", None]))
    conn.commit()


def main():
    try:
        conn = connect()
    except Exception as e:
        print(f"FAIL: connect: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"ok - connect (server_version {conn.info.server_version})")
    for test in (test_types, test_literals, test_numbers_against_numerics, test_prepared, test_executemany,
                 test_copy_from_text, test_copy_to_text, test_copy_to_csv,
                 test_copy_from_binary, test_copy_from_binary_without_trailer,
                 test_copy_to_binary, test_errors, test_transactions,
                 test_session_time_zone, test_named_cursor, test_listen_notify,
                 test_arrays):
        try:
            test(conn)
        except Exception as e:
            unexpected(test.__name__, e)
            conn = recover(conn)
    conn.close()
    finish("psycopg3")


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
