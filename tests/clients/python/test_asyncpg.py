#!/usr/bin/env python3
"""asyncpg against the server. asyncpg uses the extended protocol and binary
format for everything. It queries pg_catalog (a large WITH RECURSIVE over
pg_type) only for type OIDs outside its built-in table: none of the types used
here, as long as the server reports the standard OIDs. Other server-side help
it needs: copy_records_to_table prepares (Parse/Describe only)
`SELECT "cols" FROM "table" LIMIT 1` for the column types, and
copy_from_query with arguments runs `SELECT quote_literal($1::"pg_catalog"."int4"::text)`.

Connection from the libpq environment: PGHOST, PGPORT, PGUSER, PGDATABASE.
Prints one line per passed check; exits 1 on the first failure, or with
CLIENT_TESTS_KEEP_GOING=1 runs on and reports every failure.
Tables are named after the client and dropped first, so the scripts can run
concurrently against one server.
"""

import asyncio
import datetime as dt
import io
import json
import os
import sys
import uuid
from decimal import Decimal

try:
    import asyncpg
except ImportError:
    print("SKIPPED: asyncpg not installed (pip install asyncpg)")
    sys.exit(0)

PREFIX = "asyncpg_"
TYPES = PREFIX + "types"
ITEMS = PREFIX + "items"
COPY_T = PREFIX + "copy"
TX = PREFIX + "tx"
CURSOR_T = PREFIX + "cursor"
ERR_T = PREFIX + "errors"


from harness import CheckFailed, check, fail, finish, unexpected  # noqa: E402


async def connect():
    # With no arguments asyncpg reads PGHOST, PGPORT, PGUSER, PGDATABASE.
    return await asyncpg.connect()


JSON_TEXT = '{"a": 1, "b": [true, null, "x"]}'
JSONB_TEXT = '{"k": {"nested": 2.5}, "list": [1, 2]}'

COLUMNS = [
    # name, SQL type, value, type OID, asyncpg type name
    ("id", "integer PRIMARY KEY", 1, 23, "int4"),
    ("c_int2", "smallint", -12345, 21, "int2"),
    ("c_int8", "bigint", 2**62 + 7, 20, "int8"),
    ("c_float4", "real", 0.75, 700, "float4"),
    ("c_float8", "double precision", 1e-300, 701, "float8"),
    ("c_numeric", "numeric(12,2)", Decimal("0.05"), 1700, "numeric"),
    ("c_text", "text", "tab\there, quote ' and ünïcode", 25, "text"),
    ("c_varchar", "varchar(20)", "exactly twenty chars", 1043, "varchar"),
    ("c_bool", "boolean", True, 16, "bool"),
    ("c_date", "date", dt.date(1970, 1, 1), 1082, "date"),
    ("c_ts", "timestamp", dt.datetime(1999, 12, 31, 23, 59, 59, 999999), 1114, "timestamp"),
    ("c_tstz", "timestamptz",
     dt.datetime(2038, 1, 19, 3, 14, 8, 500, tzinfo=dt.timezone.utc), 1184, "timestamptz"),
    ("c_time", "time", dt.time(0, 0, 0, 1), 1083, "time"),
    ("c_interval", "interval", dt.timedelta(days=10, seconds=3600, microseconds=5), 1186, "interval"),
    ("c_uuid", "uuid", uuid.UUID("00000000-0000-4000-8000-000000000001"), 2950, "uuid"),
    ("c_json", "json", JSON_TEXT, 114, "json"),
    ("c_jsonb", "jsonb", JSONB_TEXT, 3802, "jsonb"),
    ("c_bytea", "bytea", b"\x00binary\xff", 17, "bytea"),
]
NAMES = [c[0] for c in COLUMNS]


def normalize(name, value):
    if value is None:
        return None
    if name == "c_uuid":
        return uuid.UUID(str(value))  # asyncpg has its own UUID class
    if name in ("c_json", "c_jsonb") and isinstance(value, str):
        return json.loads(value)  # jsonb text is normalized by the server
    return value


def compare_row(label, got, expected):
    if got is None:
        fail(f"{label}: expected a row, got none")
    got = tuple(got)
    if len(got) != len(expected):
        fail(f"{label}: expected {len(expected)} columns, got {len(got)}")
    for name, g, e in zip(NAMES, got, expected):
        g2, e2 = normalize(name, g), normalize(name, e)
        if g2 != e2 or type(g2) is not type(e2):
            fail(f"{label}: column {name}: expected {e!r} ({type(e).__name__}), "
                 f"got {g!r} ({type(g).__name__})")
    print(f"ok - {label}")


async def test_types(conn):
    await conn.execute(f"DROP TABLE IF EXISTS {TYPES}")
    await conn.execute(f"CREATE TABLE {TYPES} ({', '.join(f'{c[0]} {c[1]}' for c in COLUMNS)})")
    print("ok - create table with every type")
    insert = (f"INSERT INTO {TYPES} ({', '.join(NAMES)}) VALUES "
              f"({', '.join(f'${i + 1}' for i in range(len(NAMES)))})")
    status = await conn.execute(insert, *[c[2] for c in COLUMNS])
    check("insert with binary parameters: command tag", status, "INSERT 0 1")
    await conn.execute(insert, 2, *[None] * (len(COLUMNS) - 1))
    print("ok - insert NULLs for every column")

    select = f"SELECT {', '.join(NAMES)} FROM {TYPES} WHERE id = $1"
    row = await conn.fetchrow(select, 1)
    compare_row("fetchrow of every type (binary)", row, [c[2] for c in COLUMNS])
    check("timestamptz is timezone-aware", row["c_tstz"].tzinfo is not None, True)
    check("json arrives as text (default codec)", row["c_json"], JSON_TEXT)
    row = await conn.fetchrow(select, 2)
    compare_row("fetchrow of NULLs (binary)", row, [2] + [None] * (len(COLUMNS) - 1))

    stmt = await conn.prepare(select)
    got = [(a.name, a.type.oid, a.type.name) for a in stmt.get_attributes()]
    check("prepared statement attributes: names, OIDs, type names", got,
          [(c[0], c[3], c[4]) for c in COLUMNS])
    check("prepared statement parameter types",
          [p.name for p in stmt.get_parameters()], ["int4"])

    # A json codec: set_type_codec introspects the type in pg_catalog.
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")
    row = await conn.fetchrow(f"SELECT c_json, c_jsonb FROM {TYPES} WHERE id = 1")
    check("json/jsonb through set_type_codec", (row["c_json"], row["c_jsonb"]),
          (json.loads(JSON_TEXT), json.loads(JSONB_TEXT)))
    await conn.execute(f"UPDATE {TYPES} SET c_jsonb = $1 WHERE id = 2", {"set": [1, "two"]})
    check("jsonb parameter through codec",
          await conn.fetchval(f"SELECT c_jsonb FROM {TYPES} WHERE id = 2"),
          {"set": [1, "two"]})
    await conn.reset_type_codec("json", schema="pg_catalog")
    await conn.reset_type_codec("jsonb", schema="pg_catalog")


FETCHVAL_CASES = [
    # name, query, arguments, expected value
    ("fetchval int parameter", "SELECT $1::int + 1", (41,), 42),
    ("fetchval text parameter", "SELECT $1::text || 'b'", ("a",), "ab"),
    ("fetchval numeric parameter", "SELECT $1::numeric * 2", (Decimal("1.25"),), Decimal("2.50")),
    ("fetchval date parameter", "SELECT $1::date + 1", (dt.date(2024, 2, 28),), dt.date(2024, 2, 29)),
    ("fetchval bigint parameter compared", "SELECT $1::bigint > 5", (2**40,), True),
    ("fetchval NULL", "SELECT NULL::int", (), None),
    ("fetchval bool", "SELECT 1 < 2", (), True),
    ("fetchval count", f"SELECT count(*) FROM {TYPES}", (), 2),
]


async def test_fetchval(conn):
    try:
        check("fetch('SELECT $1::int + 1', 41)",
              [tuple(r) for r in await conn.fetch("SELECT $1::int + 1", 41)], [(42,)])
    except Exception as e:
        unexpected("fetch('SELECT $1::int + 1', 41)", e)
    for name, query, args, expected in FETCHVAL_CASES:
        try:
            check(name, await conn.fetchval(query, *args), expected)
        except Exception as e:
            unexpected(f"{name} ({query})", e)
    check("fetchval column=1", await conn.fetchval("SELECT 1, 'two'", column=1), "two")
    check("simple-protocol execute of two statements",
          await conn.execute("SELECT 1; SELECT 2"), "SELECT 1")


async def test_prepared(conn):
    await conn.execute(f"DROP TABLE IF EXISTS {ITEMS}")
    await conn.execute(f"CREATE TABLE {ITEMS} (id integer PRIMARY KEY, name text, "
                       "price numeric(12,2), day date)")
    ins = await conn.prepare(f"INSERT INTO {ITEMS} (id, name, price, day) VALUES ($1, $2, $3, $4)")
    for i in range(1, 6):
        await ins.fetch(i, f"p{i}", Decimal(i) / 2, dt.date(2024, 1, i))
    print("ok - prepared insert executed 5 times")
    sel = await conn.prepare(f"SELECT name, price, day FROM {ITEMS} WHERE id = $1")
    for i in range(1, 6):
        row = await sel.fetchrow(i)
        if tuple(row) != (f"p{i}", (Decimal(i) / 2).quantize(Decimal("0.01")), dt.date(2024, 1, i)):
            fail(f"prepared select #{i}: got {tuple(row)!r}")
    print("ok - prepared select executed 5 times")
    check("prepared fetchval", await sel.fetchval(3), "p3")
    rng = await conn.prepare(f"SELECT id FROM {ITEMS} WHERE id BETWEEN $1 AND $2 ORDER BY id")
    check("prepared statement, two parameters", [r["id"] for r in await rng.fetch(2, 4)], [2, 3, 4])
    check("prepared statement, no rows", await rng.fetch(50, 60), [])


async def test_executemany(conn):
    rows = [(i, f"many {i}", None if i % 3 == 0 else Decimal(i), None) for i in range(10, 30)]
    await conn.executemany(f"INSERT INTO {ITEMS} (id, name, price, day) VALUES ($1, $2, $3, $4)", rows)
    got = await conn.fetch(f"SELECT id, name, price, day FROM {ITEMS} WHERE id >= 10 ORDER BY id")
    check("executemany rows", [tuple(r) for r in got],
          [(i, n, None if p is None else p.quantize(Decimal("0.01")), d) for i, n, p, d in rows])
    await conn.executemany(f"DELETE FROM {ITEMS} WHERE id = $1", [(i,) for i in range(20, 30)])
    check("executemany delete", await conn.fetchval(f"SELECT count(*) FROM {ITEMS} WHERE id >= 10"), 10)


COPY_TS = dt.datetime(2022, 2, 2, 2, 2, 2, tzinfo=dt.timezone.utc)
COPY_RECORDS = [
    (1, "one", Decimal("1.10"), COPY_TS, True),
    (2, None, None, None, None),
    (3, "tab\tand\nnewline", Decimal("-0.01"), COPY_TS, False),
]
COPY_COLS = ["id", "name", "amount", "ts", "flag"]


async def create_copy_table(conn, records=()):
    await conn.execute(f"DROP TABLE IF EXISTS {COPY_T}")
    await conn.execute(f"CREATE TABLE {COPY_T} (id integer PRIMARY KEY, name text, "
                       "amount numeric(12,2), ts timestamptz, flag boolean)")
    if records:  # with INSERT, not COPY
        await conn.executemany(f"INSERT INTO {COPY_T} VALUES ($1, $2, $3, $4, $5)", records)


async def test_copy_records_to_table(conn):
    await create_copy_table(conn)
    status = await conn.copy_records_to_table(COPY_T, records=COPY_RECORDS, columns=COPY_COLS)
    check("copy_records_to_table status", status, "COPY 3")
    got = await conn.fetch(f"SELECT id, name, amount, ts, flag FROM {COPY_T} ORDER BY id")
    check("copy_records_to_table rows", [tuple(r) for r in got], COPY_RECORDS)


async def test_copy_from_query(conn):
    await create_copy_table(conn, COPY_RECORDS)
    buf = io.BytesIO()
    status = await conn.copy_from_query(
        f"SELECT id, name, amount FROM {COPY_T} WHERE id <> $1 ORDER BY id", 2,
        output=buf, format="csv", header=True)
    check("copy_from_query status", status, "COPY 2")
    check("copy_from_query csv data", buf.getvalue().decode(),
          'id,name,amount\n1,one,1.10\n3,"tab\tand\nnewline",-0.01\n')


async def test_copy_from_table(conn):
    await create_copy_table(conn, COPY_RECORDS)
    buf = io.BytesIO()
    status = await conn.copy_from_table(COPY_T, columns=["id", "name"], output=buf)
    check("copy_from_table status", status, "COPY 3")
    check("copy_from_table text data", sorted(buf.getvalue().decode().splitlines()),
          ["1\tone", "2\t\\N", "3\ttab\\tand\\nnewline"])

    buf = io.BytesIO()
    await conn.copy_from_table(COPY_T, columns=["id"], output=buf, format="binary")
    data = buf.getvalue()
    check("copy_from_table binary signature", data[:11], b"PGCOPY\n\xff\r\n\x00")
    check("copy_from_table binary trailer", data[-2:], b"\xff\xff")


async def test_copy_to_table(conn):
    await create_copy_table(conn)
    status = await conn.copy_to_table(
        COPY_T, source=io.BytesIO(b"7,seven,7.70,,true\n8,,,,\n"),
        columns=COPY_COLS, format="csv")
    check("copy_to_table (csv) status", status, "COPY 2")
    got = await conn.fetch(f"SELECT id, name, amount, flag FROM {COPY_T} ORDER BY id")
    check("copy_to_table (csv) rows", [tuple(r) for r in got],
          [(7, "seven", Decimal("7.70"), True), (8, None, None, None)])


async def test_cursor(conn):
    await conn.execute(f"DROP TABLE IF EXISTS {CURSOR_T}")
    await conn.execute(f"CREATE TABLE {CURSOR_T} (id integer PRIMARY KEY)")
    await conn.execute(f"INSERT INTO {CURSOR_T} VALUES "
                       + ", ".join(f"({i})" for i in range(1, 11)))
    async with conn.transaction():
        ids = [r["id"] async for r in conn.cursor(
            f"SELECT id FROM {CURSOR_T} ORDER BY id", prefetch=3)]
    check("cursor iteration with prefetch=3 (portal row limit)", ids, list(range(1, 11)))


async def count_tx(conn, id_):
    return await conn.fetchval(f"SELECT count(*) FROM {TX} WHERE id = $1", id_)


class Boom(Exception):
    pass


async def test_transactions(conn):
    other = await connect()
    await conn.execute(f"DROP TABLE IF EXISTS {TX}")
    await conn.execute(f"CREATE TABLE {TX} (id integer PRIMARY KEY, v text)")
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {TX} VALUES (1, 'a')")
        check("in transaction", conn.is_in_transaction(), True)
        check("uncommitted row invisible to another connection", await count_tx(other, 1), 0)
    check("committed row visible to another connection", await count_tx(other, 1), 1)
    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {TX} VALUES (2, 'b')")
            raise Boom()
    except Boom:
        pass
    check("rolled back on exception", await count_tx(other, 2), 0)
    check("not in transaction after rollback", conn.is_in_transaction(), False)
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {TX} VALUES (3, 'outer')")
        try:
            async with conn.transaction():  # savepoint
                await conn.execute(f"INSERT INTO {TX} VALUES (4, 'inner')")
                raise Boom()
        except Boom:
            pass
    check("nested transaction: outer committed, inner rolled back",
          (await count_tx(other, 3), await count_tx(other, 4)), (1, 0))
    tr = conn.transaction()
    await tr.start()
    await conn.execute(f"INSERT INTO {TX} VALUES (5, 'manual')")
    await tr.rollback()
    check("manual transaction rollback", await count_tx(other, 5), 0)
    await conn.execute(f"INSERT INTO {TX} VALUES (6, 'auto')")
    check("statement outside a transaction is committed", await count_tx(other, 6), 1)
    await other.close()


async def expect_error(name, conn, exc_class, sqlstate, sql, *args, simple=False):
    """Runs sql expecting exc_class. conn.fetch uses the extended protocol
    (Parse/Bind/Execute); conn.execute without arguments the simple one."""
    try:
        if simple:
            await conn.execute(sql)
        else:
            await conn.fetch(sql, *args)
    except exc_class as e:
        check(f"{name}: sqlstate", e.sqlstate, sqlstate)
    except asyncpg.PostgresError as e:
        fail(f"{name}: expected {exc_class.__name__}, got {type(e).__name__} "
             f"(sqlstate {e.sqlstate}): {e}")
    else:
        fail(f"{name}: expected {exc_class.__name__}, got no error")
    check(f"{name}: connection still works", await conn.fetchval("SELECT 1"), 1)


async def test_errors(conn):
    exc = asyncpg.exceptions
    await conn.execute(f"DROP TABLE IF EXISTS {ERR_T}")
    await conn.execute(f"CREATE TABLE {ERR_T} (id integer PRIMARY KEY, name text)")
    await conn.execute(f"INSERT INTO {ERR_T} VALUES (1, 'one')")
    await expect_error("unique violation", conn, exc.UniqueViolationError, "23505",
                       f"INSERT INTO {ERR_T} (id, name) VALUES ($1, $2)", 1, "dup")
    await expect_error("undefined table", conn, exc.UndefinedTableError, "42P01",
                       "SELECT * FROM asyncpg_no_such_table")
    await expect_error("division by zero", conn, exc.DivisionByZeroError, "22012",
                       "SELECT 1 / 0")
    await expect_error("syntax error", conn, exc.PostgresSyntaxError, "42601", "SELEC 1")
    await expect_error("division by zero (simple protocol)", conn, exc.DivisionByZeroError,
                       "22012", "SELECT 1 / 0", simple=True)
    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {ERR_T} (id, name) VALUES (1, 'dup')")
    except exc.UniqueViolationError:
        pass
    check("error inside transaction block rolled back", conn.is_in_transaction(), False)
    check("connection works after failed transaction", await conn.fetchval("SELECT 2"), 2)


async def test_pool(conn):
    """A Pool under 32 concurrent tasks: every release resets the
    connection (pg_advisory_unlock_all, CLOSE ALL, UNLISTEN *, RESET ALL),
    and a SERIAL key is handed out once per insert."""
    table = PREFIX + "pool"
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, task int)")
    pool = await asyncpg.create_pool(min_size=2, max_size=8)

    async def work(i):
        async with pool.acquire() as c:
            await c.execute("SET application_name = 'pool_task'")
            got = await c.fetchval(f"INSERT INTO {table} (task) VALUES ($1) RETURNING id", i)
            assert await c.fetchval("SELECT pg_try_advisory_lock($1)", 1000 + i)
            return got

    ids = await asyncio.gather(*(work(i) for i in range(32)))
    check("pool: 32 tasks got distinct SERIAL keys", sorted(ids), list(range(1, 33)))
    held = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    check("pool: the reset on release freed every advisory lock", held, 0)
    async with pool.acquire() as c:
        check("pool: the reset on release restored settings",
              await c.fetchval("SHOW application_name") != "pool_task", True)
    await pool.close()
    await conn.execute(f"DROP TABLE {table}")


async def test_listen_notify(conn):
    other = await connect()
    got = asyncio.Queue()
    await conn.add_listener("asyncpg_events", lambda c, pid, channel, payload: got.put_nowait(payload))
    await other.execute("NOTIFY asyncpg_events, 'first'")
    async with other.transaction():
        await other.execute("SELECT pg_notify('asyncpg_events', 'second')")
        await other.execute("SELECT pg_notify('asyncpg_events', 'third')")
    try:
        async with other.transaction():
            await other.execute("NOTIFY asyncpg_events, 'never'")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    await other.execute("NOTIFY asyncpg_events, 'last'")
    payloads = [await asyncio.wait_for(got.get(), 5) for _ in range(4)]
    check("listen/notify: delivered after commit, in commit order, none from a rollback",
          payloads, ["first", "second", "third", "last"])
    await conn.remove_listener("asyncpg_events", lambda *a: None)
    await other.close()


async def test_advisory_locks(conn):
    other = await connect()
    await conn.execute("SELECT pg_advisory_lock(77)")
    check("advisory: another session cannot take a held lock",
          await other.fetchval("SELECT pg_try_advisory_lock(77)"), False)
    waiter = asyncio.ensure_future(other.execute("SELECT pg_advisory_lock(77)"))
    await asyncio.sleep(0.3)
    check("advisory: a blocking lock waits", waiter.done(), False)
    await conn.execute("SELECT pg_advisory_unlock(77)")
    await asyncio.wait_for(waiter, 5)
    check("advisory: the waiter gets the lock once released",
          await conn.fetchval("SELECT pg_try_advisory_lock(77)"), False)
    await other.close()
    check("advisory: a session's locks go when it disconnects",
          await conn.fetchval("SELECT pg_try_advisory_lock(77)"), True)
    await conn.execute("SELECT pg_advisory_unlock_all()")
    check("advisory: set_config sets for the session",
          await conn.fetchval("SELECT set_config('application_name', 'asyncpg_cfg', false)"),
          "asyncpg_cfg")
    check("advisory: ... as SHOW reports", await conn.fetchval("SHOW application_name"),
          "asyncpg_cfg")


async def main():
    try:
        conn = await connect()
    except Exception as e:
        print(f"FAIL: connect: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    ver = conn.get_server_version()
    print(f"ok - connect (server_version {ver.major}.{ver.minor})")
    for test in (test_types, test_fetchval, test_prepared, test_executemany,
                 test_copy_records_to_table, test_copy_from_query, test_copy_from_table,
                 test_copy_to_table,
                 test_cursor, test_transactions, test_errors, test_pool,
                 test_listen_notify, test_advisory_locks):
        try:
            await test(conn)
        except Exception as e:
            unexpected(test.__name__, e)
            if conn.is_closed():  # keep-going mode: a new connection for the next test
                conn = await connect()
            elif conn.is_in_transaction():
                await conn.execute("ROLLBACK")
    await conn.close()
    finish("asyncpg")


if __name__ == "__main__":
    asyncio.run(main())
