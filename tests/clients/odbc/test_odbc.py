#!/usr/bin/env python3
"""ODBC compatibility checks for QuiverDB through psqlODBC (the PostgreSQL ODBC driver) and pyodbc.

Install (Debian):
    apt-get install -y unixodbc unixodbc-dev odbc-postgresql
    pip install pyodbc
Run:
    PGHOST=127.0.0.1 PGPORT=5432 PGUSER=quiver PGDATABASE=quiver python3 test_odbc.py

Prints "ok <check>" for each passed check and "odbc: N passed, 0 failed" at the end; exits 1
with "FAIL odbc: <check>: expected <x>, got <y>" on the first failure. With CLIENT_KEEP_GOING=1
it reports every failure instead (a failed step is abandoned, the next one runs) and ends with
"odbc: N passed, M failed". Prints "SKIPPED: ..." and
exits 0 when pyodbc or the psqlODBC driver is not installed. Tables are prefixed odbc_ and dropped
at start. The driver can be forced with ODBC_DRIVER (a registered name or a path to the .so).
"""

import datetime
import glob
import os
import sys
from decimal import Decimal

try:
    import pyodbc
except ImportError:
    print("SKIPPED: pyodbc is not installed "
          "(apt-get install -y unixodbc unixodbc-dev odbc-postgresql && pip install pyodbc)")
    sys.exit(0)

KEEP_GOING = os.environ.get("CLIENT_KEEP_GOING") == "1"
PASSED = 0
FAILED = 0
STEP = "(start)"


def check(name, got, expected):
    global PASSED
    if got != expected or type(got) is not type(expected):
        fail(f"{STEP} / {name}: expected {expected!r}, got {got!r}")
        return
    PASSED += 1
    print(f"ok {STEP} / {name}", flush=True)


def fail(message):
    """Stops the program, or with CLIENT_KEEP_GOING=1 counts the failure and carries on."""
    global FAILED
    FAILED += 1
    sys.stdout.flush()
    if KEEP_GOING:
        print(f"FAIL odbc: {message}", flush=True)
        return
    print(f"FAIL odbc: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def reset_connection():
    """After a failed step (only reached with CLIENT_KEEP_GOING=1): leave no transaction open."""
    try:
        if CONN is not None and not CONN.autocommit:
            CONN.rollback()
            CONN.autocommit = True
    except pyodbc.Error:
        pass


def find_driver():
    """The psqlODBC Unicode driver: its registered name, else the path of its shared library."""
    forced = os.environ.get("ODBC_DRIVER")
    if forced:
        return forced
    if "PostgreSQL Unicode" in pyodbc.drivers():
        return "PostgreSQL Unicode"
    paths = sorted(glob.glob("/usr/lib/*/odbc/psqlodbcw.so") + glob.glob("/usr/lib*/psqlodbcw.so")
                   + glob.glob("/usr/local/lib/psqlodbcw.so"))
    return paths[0] if paths else None


def connection_string(driver):
    env = os.environ
    return (f"DRIVER={{{driver}}};SERVER={env.get('PGHOST', '127.0.0.1')};"
            f"PORT={env.get('PGPORT', '5432')};DATABASE={env.get('PGDATABASE', 'postgres')};"
            f"UID={env.get('PGUSER', 'postgres')};"
            # Report boolean columns as SQL_BIT (Python bool) instead of the driver's default char '1'/'0'.
            "BoolsAsChar=0;")


DRIVER = None
CONN = None
TABLES = ["odbc_types", "odbc_tx"]
TYPE_COLUMNS = ["id", "c_int", "c_big", "c_double", "c_num", "c_text", "c_varchar", "c_bool",
                "c_date", "c_ts"]
VALUES = [1, -2147483648, 9223372036854775807, 0.30000000000000004, Decimal("-1234567890.12"),
          "héllo wörld ✓ 'quoted' \\", "twenty chars exactly", True, datetime.date(2024, 2, 29),
          datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)]


def connect(autocommit=True):
    return pyodbc.connect(connection_string(DRIVER), autocommit=autocommit, timeout=10)


def scalar(conn, sql, *params):
    return conn.cursor().execute(sql, *params).fetchone()[0]


def sqlstate_of(conn, sql, *params):
    try:
        conn.cursor().execute(sql, *params)
        return "(no error)"
    except pyodbc.Error as e:
        return e.args[0]


# ------------------------------------------------------------------ checks

def check_connect():
    global CONN
    CONN = connect()
    check("SELECT 1", scalar(CONN, "SELECT 1"), 1)
    check("autocommit on", CONN.autocommit, True)


def check_create_tables():
    cur = CONN.cursor()
    for t in TABLES:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute("CREATE TABLE odbc_types (id integer PRIMARY KEY, c_int integer, c_big bigint,"
                " c_double double precision, c_num numeric(12,2), c_text text,"
                " c_varchar varchar(20), c_bool boolean, c_date date, c_ts timestamp)")
    cur.execute("CREATE TABLE odbc_tx (id integer PRIMARY KEY, note text)")
    check("odbc_types is empty", scalar(CONN, "SELECT count(*) FROM odbc_types"), 0)


def check_parameters():
    cur = CONN.cursor()
    placeholders = ", ".join("?" for _ in TYPE_COLUMNS)
    insert = f"INSERT INTO odbc_types ({', '.join(TYPE_COLUMNS)}) VALUES ({placeholders})"
    cur.execute(insert, *VALUES)
    check("insert with ? parameters: rowcount", cur.rowcount, 1)
    cur.execute(insert, 2, *([None] * (len(TYPE_COLUMNS) - 1)))
    check("insert of NULL parameters: rowcount", cur.rowcount, 1)

    select = f"SELECT {', '.join(TYPE_COLUMNS)} FROM odbc_types WHERE id = ?"
    for run in (1, 2, 3):
        row = cur.execute(select, 1).fetchone()
        check(f"run {run}: a row", row is not None, True)
        for name, got, expected in zip(TYPE_COLUMNS, row, VALUES):
            check(f"run {run}: {name} round trip", got, expected)
        check(f"run {run}: one row only", cur.fetchone(), None)

    row = cur.execute(select, 2).fetchone()
    for name, got in zip(TYPE_COLUMNS[1:], row[1:]):
        check(f"{name} NULL round trip", got, None)

    python_types = [int, int, int, float, Decimal, str, str, bool, datetime.date, datetime.datetime]
    for (name, type_code, *_), expected in zip(cur.description, python_types):
        check(f"cursor.description {name} type", type_code, expected)

    rows = cur.execute("SELECT id FROM odbc_types WHERE c_text = ? AND c_bool = ? ORDER BY id",
                       VALUES[5], True).fetchall()
    check("text and bool parameters in WHERE", [r[0] for r in rows], [1])
    n = scalar(CONN, "SELECT count(*) FROM odbc_types WHERE c_ts > ? AND c_date = ? AND c_num < ?",
               datetime.datetime(2024, 1, 1), datetime.date(2024, 2, 29), Decimal("0"))
    check("timestamp, date and numeric parameters in WHERE", n, 1)


def check_executemany():
    cur = CONN.cursor()
    cur.executemany("INSERT INTO odbc_tx (id, note) VALUES (?, ?)",
                    [(10, "a"), (11, "b"), (12, "c")])
    check("executemany inserted rows", scalar(CONN, "SELECT count(*) FROM odbc_tx"), 3)
    cur.execute("DELETE FROM odbc_tx WHERE id >= ?", 10)
    check("DELETE rowcount", cur.rowcount, 3)


def check_tables():
    cur = CONN.cursor()
    rows = cur.tables(table="odbc_types").fetchall()
    check("tables(table=odbc_types) finds one table", len(rows), 1)
    check("table_name", rows[0].table_name, "odbc_types")
    check("table_schem", rows[0].table_schem, "public")
    check("table_type", rows[0].table_type, "TABLE")

    names = sorted(r.table_name for r in cur.tables(schema="public", tableType="TABLE")
                   if r.table_name.startswith("odbc_"))
    check("tables(schema=public, tableType=TABLE) lists ours", names, ["odbc_tx", "odbc_types"])


def check_columns():
    cur = CONN.cursor()
    cols = cur.columns(table="odbc_types").fetchall()
    check("column names in order", [c.column_name for c in cols], TYPE_COLUMNS)
    check("type names", [c.type_name for c in cols],
          ["int4", "int4", "int8", "float8", "numeric", "text", "varchar", "bool", "date",
           "timestamp"])
    check("ordinal positions", [c.ordinal_position for c in cols], list(range(1, 11)))
    check("nullable (id is the primary key)", [c.nullable for c in cols],
          [pyodbc.SQL_NO_NULLS] + [pyodbc.SQL_NULLABLE] * 9)
    by_name = {c.column_name: c for c in cols}
    check("varchar(20) column_size", by_name["c_varchar"].column_size, 20)
    check("numeric(12,2) column_size", by_name["c_num"].column_size, 12)
    check("numeric(12,2) decimal_digits", by_name["c_num"].decimal_digits, 2)
    check("integer data_type", by_name["c_int"].data_type, pyodbc.SQL_INTEGER)
    check("bigint data_type", by_name["c_big"].data_type, pyodbc.SQL_BIGINT)
    check("varchar data_type", by_name["c_varchar"].data_type, pyodbc.SQL_WVARCHAR)
    check("timestamp data_type", by_name["c_ts"].data_type, pyodbc.SQL_TYPE_TIMESTAMP)

    keys = cur.primaryKeys(table="odbc_types").fetchall()
    check("primaryKeys column", [k.column_name for k in keys], ["id"])


def check_transactions():
    other = connect()
    CONN.autocommit = False
    cur = CONN.cursor()
    cur.execute("INSERT INTO odbc_tx (id, note) VALUES (?, ?)", 1, "committed")
    check("own uncommitted row visible", scalar(CONN, "SELECT count(*) FROM odbc_tx"), 1)
    check("other session does not see it", scalar(other, "SELECT count(*) FROM odbc_tx"), 0)
    CONN.commit()
    check("other session sees it after commit", scalar(other, "SELECT count(*) FROM odbc_tx"), 1)

    cur.execute("INSERT INTO odbc_tx (id, note) VALUES (?, ?)", 2, "rolled back")
    cur.execute("UPDATE odbc_tx SET note = ? WHERE id = ?", "changed", 1)
    CONN.rollback()
    check("rolled back insert is gone", scalar(CONN, "SELECT count(*) FROM odbc_tx"), 1)
    check("rolled back update is gone",
          scalar(CONN, "SELECT note FROM odbc_tx WHERE id = ?", 1), "committed")
    CONN.commit()
    CONN.autocommit = True
    check("other session sees one row", scalar(other, "SELECT count(*) FROM odbc_tx"), 1)
    other.close()


def check_errors():
    check("duplicate key SQLSTATE",
          sqlstate_of(CONN, "INSERT INTO odbc_tx (id, note) VALUES (?, ?)", 1, "dup"), "23505")
    check("works after duplicate key", scalar(CONN, "SELECT count(*) FROM odbc_tx"), 1)
    check("undefined table SQLSTATE", sqlstate_of(CONN, "SELECT * FROM odbc_no_such_table"), "42P01")
    check("works after undefined table", scalar(CONN, "SELECT 1"), 1)


def main():
    global DRIVER, STEP
    DRIVER = find_driver()
    if DRIVER is None:
        print("SKIPPED: the psqlODBC driver is not installed "
              "(apt-get install -y unixodbc odbc-postgresql)")
        return 0
    print(f"odbc: driver {DRIVER!r}, pyodbc {pyodbc.version}, "
          f"{os.environ.get('PGHOST')}:{os.environ.get('PGPORT')}", flush=True)
    steps = [
        ("connect", check_connect),
        ("create tables", check_create_tables),
        ("parameters", check_parameters),
        ("executemany", check_executemany),
        ("SQLTables", check_tables),
        ("SQLColumns", check_columns),
        ("transactions", check_transactions),
        ("errors", check_errors),
    ]
    for name, fn in steps:
        STEP = name
        try:
            fn()
        except Exception as e:  # pyodbc.Error, or e.g. no connection after a failed connect
            fail(f"{name}: unexpected {type(e).__name__}: {e}")
            reset_connection()
        if CONN is None:
            fail("no connection, nothing else can run")
            return 1
    if CONN is not None:
        CONN.close()
    print(f"odbc: {PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
