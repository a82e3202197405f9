// node-postgres (pg) compatibility checks for QuiverDB.
//
// Install and run (from this directory):
//   npm ci
//   PGHOST=127.0.0.1 PGPORT=5432 PGUSER=quiver PGDATABASE=quiver node test_pg.js
//
// Prints "ok <check>" for each passed check and "node: N passed, 0 failed" at the end; exits 1
// with "FAIL node: <check>: expected <x>, got <y>" on the first failure. With CLIENT_KEEP_GOING=1
// it reports every failure instead (a failed step is abandoned, the next one runs) and ends with
// "node: N passed, M failed". Tables are prefixed node_ and dropped at start. pg.Client reads
// PGHOST, PGPORT, PGUSER and PGDATABASE itself.
'use strict';

const util = require('util');
const pg = require('pg');

const OID = pg.types.builtins;
const KEEP_GOING = process.env.CLIENT_KEEP_GOING === '1';
let passed = 0;
let failed = 0;
let step = '(start)';

function show(v) {
  return util.inspect(v, { depth: 5, breakLength: Infinity });
}

// Stops the program, or with CLIENT_KEEP_GOING=1 counts the failure and carries on.
function fail(message) {
  failed++;
  if (KEEP_GOING) {
    console.log(`FAIL node: ${message}`);
    return;
  }
  console.error(`FAIL node: ${message}`);
  process.exit(1);
}

function check(name, got, expected) {
  if (!util.isDeepStrictEqual(got, expected)) {
    fail(`${step} / ${name}: expected ${show(expected)}, got ${show(got)}`);
    return;
  }
  passed++;
  console.log(`ok ${step} / ${name}`);
}

async function errorOf(client, query, values) {
  try {
    await client.query(query, values);
    return null;
  } catch (err) {
    return err;
  }
}

async function count(client, sql) {
  const res = await client.query(sql);
  return res.rows[0].n;
}

async function newClient() {
  const client = new pg.Client({
    application_name: 'quiver-node-client',
    connectionTimeoutMillis: 10000, // fail instead of hanging on a server that does not answer
    query_timeout: 60000,
  });
  // A dropped connection surfaces here rather than as an uncaught 'error' event.
  client.on('error', (err) => fail(`${step}: connection error: ${err.message}`));
  await client.connect();
  return client;
}

// ------------------------------------------------------------------ test data

const COLUMNS = ['id', 'c_small', 'c_int', 'c_big', 'c_num', 'c_real', 'c_double', 'c_text',
  'c_varchar', 'c_bool', 'c_date', 'c_ts', 'c_tstz', 'c_json', 'c_bytea', 'c_uuid'];

const JSON_VALUE = { a: 1, b: [true, null, 'x'], nested: { 'k\u00e9y': 'v\u00e4l' } };
const BYTES = Buffer.from([0, 1, 127, 128, 255, 92, 39, 10]);
const TSTZ = new Date('2024-03-01T01:02:03.654Z');

// Parameters as the application passes them.
const PARAMS = [1, -32768, 2147483647, '9223372036854775807', '-1234567890.12', 0.1,
  0.1 + 0.2, "h\u00e9llo w\u00f6rld \u2713 'quoted' \\", 'twenty chars exactly', true,
  '2024-02-29', '2024-02-29 23:59:58.123', TSTZ, JSON_VALUE, BYTES,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'];

// Values as pg's default type parsers return them (date and timestamp are local-time Dates;
// int8 and numeric are strings so no precision is lost).
const EXPECTED = [1, -32768, 2147483647, '9223372036854775807', '-1234567890.12', 0.1,
  0.30000000000000004, "h\u00e9llo w\u00f6rld \u2713 'quoted' \\", 'twenty chars exactly', true,
  new Date(2024, 1, 29), new Date(2024, 1, 29, 23, 59, 58, 123), TSTZ, JSON_VALUE, BYTES,
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'];

const TYPE_OIDS = [OID.INT4, OID.INT2, OID.INT4, OID.INT8, OID.NUMERIC, OID.FLOAT4, OID.FLOAT8,
  OID.TEXT, OID.VARCHAR, OID.BOOL, OID.DATE, OID.TIMESTAMP, OID.TIMESTAMPTZ, OID.JSON, OID.BYTEA,
  OID.UUID];

const SELECT_ROW = `SELECT ${COLUMNS.join(', ')} FROM node_types WHERE id = $1`;

// ------------------------------------------------------------------ checks

let client;

async function checkConnect() {
  client = await newClient();
  const res = await client.query('SELECT 1 AS one');
  check('SELECT 1', res.rows, [{ one: 1 }]);
}

async function checkCreateTables() {
  for (const t of ['node_types', 'node_tx', 'node_prep']) {
    await client.query(`DROP TABLE IF EXISTS ${t}`);
  }
  await client.query(`CREATE TABLE node_types (
    id integer PRIMARY KEY, c_small smallint, c_int integer, c_big bigint, c_num numeric(12,2),
    c_real real, c_double double precision, c_text text, c_varchar varchar(20), c_bool boolean,
    c_date date, c_ts timestamp, c_tstz timestamptz, c_json json, c_bytea bytea, c_uuid uuid)`);
  await client.query('CREATE TABLE node_tx (id integer PRIMARY KEY, note text)');
  await client.query('CREATE TABLE node_prep (id integer PRIMARY KEY, label text)');
  check('node_types is empty', await count(client, 'SELECT count(*)::int AS n FROM node_types'), 0);
}

async function checkTypeRoundTrip() {
  const placeholders = COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
  const ins = await client.query(
    `INSERT INTO node_types (${COLUMNS.join(', ')}) VALUES (${placeholders})`, PARAMS);
  check('INSERT command', ins.command, 'INSERT');
  check('INSERT rowCount', ins.rowCount, 1);

  const res = await client.query(SELECT_ROW, [1]);
  check('one row', res.rowCount, 1);
  COLUMNS.forEach((col, i) => check(`${col} round trip`, res.rows[0][col], EXPECTED[i]));
  check('field names', res.fields.map((f) => f.name), COLUMNS);
  res.fields.forEach((f, i) => check(`${f.name} dataTypeID`, f.dataTypeID, TYPE_OIDS[i]));
}

async function checkNulls() {
  const placeholders = COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
  const values = COLUMNS.map((_, i) => (i === 0 ? 2 : null));
  await client.query(`INSERT INTO node_types (${COLUMNS.join(', ')}) VALUES (${placeholders})`, values);
  const res = await client.query(SELECT_ROW, [2]);
  COLUMNS.slice(1).forEach((col) => check(`${col} NULL round trip`, res.rows[0][col], null));
  const isNull = await client.query('SELECT count(*)::int AS n FROM node_types WHERE c_text IS NULL AND $1::text IS NULL', [null]);
  check('NULL parameter in WHERE', isNull.rows[0].n, 1);
}

async function checkSimpleQuery() {
  // No values: pg uses the simple query protocol, so the row comes back through a different path.
  const res = await client.query('SELECT c_big, c_num, c_bool, c_json, c_bytea FROM node_types WHERE id = 1');
  check('simple query int8', res.rows[0].c_big, '9223372036854775807');
  check('simple query numeric', res.rows[0].c_num, '-1234567890.12');
  check('simple query bool', res.rows[0].c_bool, true);
  check('simple query json', res.rows[0].c_json, JSON_VALUE);
  check('simple query bytea', res.rows[0].c_bytea, BYTES);
}

async function checkUpdateDelete() {
  const upd = await client.query('UPDATE node_types SET c_text = $1 WHERE id = $2', ['changed', 2]);
  check('UPDATE command and rowCount', [upd.command, upd.rowCount], ['UPDATE', 1]);
  const del = await client.query('DELETE FROM node_types WHERE id = $1', [2]);
  check('DELETE command and rowCount', [del.command, del.rowCount], ['DELETE', 1]);
  const ret = await client.query('UPDATE node_types SET c_int = c_int - 1 WHERE id = $1 RETURNING id, c_int', [1]);
  check('UPDATE ... RETURNING', ret.rows, [{ id: 1, c_int: 2147483646 }]);
}

async function checkTransactions() {
  const other = await newClient();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO node_tx (id, note) VALUES ($1, $2)', [1, 'committed']);
    check('own uncommitted row visible', await count(client, 'SELECT count(*)::int AS n FROM node_tx'), 1);
    check('other session does not see it', await count(other, 'SELECT count(*)::int AS n FROM node_tx'), 0);
    await client.query('COMMIT');
    check('other session sees it after COMMIT', await count(other, 'SELECT count(*)::int AS n FROM node_tx'), 1);

    await client.query('BEGIN');
    await client.query('INSERT INTO node_tx (id, note) VALUES ($1, $2)', [2, 'rolled back']);
    await client.query('UPDATE node_tx SET note = $1 WHERE id = $2', ['changed', 1]);
    await client.query('ROLLBACK');
    const rows = (await client.query('SELECT id, note FROM node_tx ORDER BY id')).rows;
    check('ROLLBACK undid insert and update', rows, [{ id: 1, note: 'committed' }]);
  } finally {
    await other.end();
  }
}

async function checkErrors() {
  const dup = await errorOf(client, 'INSERT INTO node_tx (id, note) VALUES ($1, $2)', [1, 'dup']);
  check('duplicate key err.code', dup && dup.code, '23505');
  check('duplicate key err.severity', dup && dup.severity, 'ERROR');
  check('works after duplicate key', await count(client, 'SELECT count(*)::int AS n FROM node_tx'), 1);

  const missing = await errorOf(client, 'SELECT * FROM node_no_such_table');
  check('undefined table err.code', missing && missing.code, '42P01');

  await client.query('BEGIN');
  const inTx = await errorOf(client, 'INSERT INTO node_tx (id, note) VALUES (1, $1)', ['dup']);
  check('error inside a transaction', inTx && inTx.code, '23505');
  const aborted = await errorOf(client, 'SELECT 1');
  check('aborted transaction refuses statements', aborted && aborted.code, '25P02');
  await client.query('ROLLBACK');
  check('works after ROLLBACK', (await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
}

async function checkNamedPrepared() {
  // pg parses a named statement once per connection; later runs only Bind and Execute.
  for (const run of [1, 2]) {
    const ins = await client.query({
      name: 'node_prep_insert',
      text: 'INSERT INTO node_prep (id, label) VALUES ($1, $2)',
      values: [run, `label ${run}`],
    });
    check(`named insert run ${run} rowCount`, ins.rowCount, 1);
  }
  for (const run of [1, 2, 3]) {
    const res = await client.query({
      name: 'node_prep_select',
      text: 'SELECT id, label FROM node_prep WHERE id <= $1 ORDER BY id',
      values: [run],
    });
    const expected = [{ id: 1, label: 'label 1' }, { id: 2, label: 'label 2' }].slice(0, run);
    check(`named select run ${run} rows`, res.rows, expected);
    check(`named select run ${run} dataTypeIDs`, res.fields.map((f) => f.dataTypeID), [OID.INT4, OID.TEXT]);
  }
  const types = await client.query({ name: 'node_prep_types', text: SELECT_ROW, values: [1] });
  const again = await client.query({ name: 'node_prep_types', text: SELECT_ROW, values: [1] });
  check('named select of every type, twice', again.rows, types.rows);
  check('named select of every type, c_json', again.rows[0].c_json, JSON_VALUE);
}

async function checkRowModeArray() {
  const res = await client.query({ text: 'SELECT id, label FROM node_prep ORDER BY id', rowMode: 'array' });
  check('rowMode array', res.rows, [[1, 'label 1'], [2, 'label 2']]);
}

// node-postgres maps int2/int4 (and float8) to JS numbers and int8/numeric
// to strings, by the column's type OID: an integer expression must come
// back as an integer, as in PostgreSQL (QuiverDB once typed `qty * 2` as
// bigint, and applications got strings).
async function checkExpressionTypes() {
  await client.query('CREATE TABLE node_qty (qty INT, price NUMERIC(10,2))');
  await client.query('INSERT INTO node_qty VALUES (21, 1.50), (-4, 2.25)');
  const res = await client.query(
    'SELECT qty * 2 AS doubled, qty + 1 AS plus, -qty AS neg, abs(qty) AS a, ' +
    'sum(qty) OVER () AS total, count(*) OVER () AS n, price * 2 AS p ' +
    'FROM node_qty ORDER BY qty');
  check('int4 expression is a number', res.rows[1].doubled, 42);
  check('int4 + literal is a number', res.rows[1].plus, 22);
  check('negated int4 is a number', res.rows[0].neg, 4);
  check('abs(int4) is a number', res.rows[0].a, 4);
  check('sum(int4) is bigint (a string)', res.rows[0].total, '17');
  check('count(*) is bigint (a string)', res.rows[0].n, '2');
  check('numeric * 2 keeps its scale', res.rows[1].p, '3.00');
  check('field types', res.fields.map((f) => f.dataTypeID), [23, 23, 23, 23, 20, 20, 1700]);
  const simple = await client.query('SELECT 2147483647 AS big_int, 2147483648 AS bigger, 1.5 * 2 AS num');
  check('int4 literal', simple.rows[0].big_int, 2147483647);
  check('int8 literal', simple.rows[0].bigger, '2147483648');
  check('numeric literal arithmetic', simple.rows[0].num, '3.0');
}

// A session zone: timestamptz values come back as the same instants, and
// text output carries the zone's offset.
async function checkSessionTimeZone() {
  await client.query("SET TIME ZONE 'Asia/Kolkata'");
  const res = await client.query(
    "SELECT '2024-03-30 12:00'::timestamptz AS local_noon, " +
    "'2024-03-30 12:00+00'::timestamptz::text AS shown, " +
    "extract(hour FROM '2024-03-30 12:00+00'::timestamptz) AS h");
  check('local time read in the session zone', res.rows[0].local_noon.toISOString(), '2024-03-30T06:30:00.000Z');
  check('text shows the offset', res.rows[0].shown, '2024-03-30 17:30:00+05:30');
  check('extract is numeric, in local time', res.rows[0].h, '17');
  await client.query('RESET timezone');
}

async function main() {
  console.log(`node: pg ${require('pg/package.json').version}, ` +
    `${process.env.PGHOST}:${process.env.PGPORT} as ${process.env.PGUSER}`);
  const steps = [
    ['connect', checkConnect],
    ['create tables', checkCreateTables],
    ['type round trip', checkTypeRoundTrip],
    ['NULLs', checkNulls],
    ['simple query', checkSimpleQuery],
    ['update and delete', checkUpdateDelete],
    ['transactions', checkTransactions],
    ['errors', checkErrors],
    ['named prepared statements', checkNamedPrepared],
    ['rowMode array', checkRowModeArray],
    ['expression types', checkExpressionTypes],
    ['session time zone', checkSessionTimeZone],
  ];
  for (const [name, fn] of steps) {
    step = name;
    try {
      await fn();
    } catch (err) {
      fail(`${name}: unexpected error${err.code ? ` (code ${err.code})` : ''}: ${err.message}`);
      // Only reached with CLIENT_KEEP_GOING=1: leave no transaction open for the next step.
      if (client) await client.query('ROLLBACK').catch(() => {});
    }
    if (!client) {
      fail('no connection, nothing else can run');
      process.exit(1);
    }
  }
  if (client) await client.end();
  console.log(`node: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
