// JDBC compatibility checks for QuiverDB, using the stock PostgreSQL JDBC driver (pgjdbc).
//
// Compile and run (Debian: apt-get install -y libpostgresql-jdbc-java default-jdk-headless):
//   javac -d OUTDIR -cp /usr/share/java/postgresql.jar JdbcClient.java
//   PGHOST=127.0.0.1 PGPORT=5432 PGUSER=quiver PGDATABASE=quiver \
//     java -cp OUTDIR:/usr/share/java/postgresql.jar JdbcClient
//
// Prints "ok <check>" for each passed check, "jdbc: N passed, 0 failed" at the end, and exits 1
// with "FAIL <check>: expected <x>, got <y>" on the first failure. With CLIENT_KEEP_GOING=1 it
// reports every failure instead (a failed step is abandoned, the next one runs) and ends with
// "jdbc: N passed, M failed". Every table it uses starts with jdbc_ and is dropped at start, so
// it can run next to the other client programs.

import java.io.StringReader;
import java.io.StringWriter;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.Date;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Time;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.TimeZone;
import java.util.UUID;

import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class JdbcClient {
    // A fixed JVM time zone, set before the expected values below are built,
    // so java.sql.Date/Time/Timestamp round trips do not depend on the
    // machine: UTC, or the zone of -Djdbc.zone=... (pgjdbc sends it as the
    // session's TimeZone, as applications in other zones do).
    static {
        TimeZone.setDefault(TimeZone.getTimeZone(System.getProperty("jdbc.zone", "UTC")));
    }


    // ---------------------------------------------------------------- helpers

    interface Check {
        void run() throws Exception;
    }

    static final boolean KEEP_GOING = "1".equals(System.getenv("CLIENT_KEEP_GOING"));
    static int passed = 0;
    static int failed = 0;
    static String currentStep = "(start)";

    static void check(String name, Object got, Object expected) {
        if (!Objects.deepEquals(got, expected)) {
            fail(currentStep + " / " + name + ": expected " + show(expected) + ", got " + show(got));
            return;
        }
        passed++;
        System.out.println("ok " + currentStep + " / " + name);
    }

    static String show(Object v) {
        if (v == null) return "null";
        if (v instanceof byte[]) return Arrays.toString((byte[]) v);
        if (v instanceof int[]) return Arrays.toString((int[]) v);
        if (v instanceof String) return "\"" + v + "\"";
        return v + " (" + v.getClass().getSimpleName() + ")";
    }

    /** Stops the program, or with CLIENT_KEEP_GOING=1 counts the failure and carries on. */
    static void fail(String message) {
        failed++;
        System.out.flush();
        if (KEEP_GOING) {
            System.out.println("FAIL jdbc: " + message);
            return;
        }
        System.err.println("FAIL jdbc: " + message);
        System.exit(1);
    }

    static void step(String name, Check body) {
        currentStep = name;
        try {
            body.run();
        } catch (SQLException e) {
            fail(name + ": unexpected SQLException SQLState=" + e.getSQLState() + ": " + e.getMessage());
            resetConnection();
        } catch (Exception e) {
            fail(name + ": unexpected " + e);
            resetConnection();
        }
    }

    /** After a failed step (only reached with CLIENT_KEEP_GOING=1): leave no transaction open. */
    static void resetConnection() {
        try {
            if (conn != null && !conn.getAutoCommit()) {
                conn.rollback();
                conn.setAutoCommit(true);
            }
        } catch (SQLException ignored) {
            // the next step reports whatever is still wrong
        }
    }

    /** Runs one part of a step; an SQLException fails just that part (named), not the whole step. */
    static boolean attempt(String name, Check body) throws Exception {
        try {
            body.run();
            return true;
        } catch (SQLException e) {
            fail(currentStep + " / " + name + ": unexpected SQLException SQLState=" + e.getSQLState()
                    + ": " + e.getMessage());
            return false;
        }
    }

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    static String baseUrl() {
        return "jdbc:postgresql://" + env("PGHOST", "127.0.0.1") + ":" + env("PGPORT", "5432")
                + "/" + env("PGDATABASE", "postgres");
    }

    static Connection connect(String extraUrlParams) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", env("PGUSER", "postgres"));
        props.setProperty("ApplicationName", "quiver-jdbc-client");
        // Fail instead of hanging on a server that does not answer (seconds).
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        String url = baseUrl() + (extraUrlParams.isEmpty() ? "" : "?" + extraUrlParams);
        return DriverManager.getConnection(url, props);
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    static long count(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static String sqlState(Connection c, String sql) {
        try {
            exec(c, sql);
            return "(no error)";
        } catch (SQLException e) {
            return e.getSQLState();
        }
    }

    // ---------------------------------------------------------------- test data

    interface Setter {
        void set(PreparedStatement ps, int index) throws SQLException;
    }

    interface Getter {
        Object get(ResultSet rs, String column) throws SQLException;
    }

    /** One column of jdbc_types: how the application writes it and reads it back. */
    record TypeCase(String column, String setter, Setter set, String getter, Getter get,
                    Object expected, int nullType) {
    }

    static final OffsetDateTime V_TSTZ =
            OffsetDateTime.of(2024, 3, 1, 1, 2, 3, 654321000, ZoneOffset.ofHoursMinutes(5, 30));
    static final byte[] V_BYTEA = {0, 1, 127, -128, -1, 92, 39, 10};

    static final List<TypeCase> CASES = List.of(
            new TypeCase("c_small", "setShort", (ps, i) -> ps.setShort(i, Short.MAX_VALUE),
                    "getShort", ResultSet::getShort, Short.MAX_VALUE, Types.SMALLINT),
            new TypeCase("c_int", "setInt", (ps, i) -> ps.setInt(i, Integer.MIN_VALUE),
                    "getInt", ResultSet::getInt, Integer.MIN_VALUE, Types.INTEGER),
            new TypeCase("c_big", "setLong", (ps, i) -> ps.setLong(i, Long.MAX_VALUE),
                    "getLong", ResultSet::getLong, Long.MAX_VALUE, Types.BIGINT),
            new TypeCase("c_real", "setFloat", (ps, i) -> ps.setFloat(i, 0.1f),
                    "getFloat", ResultSet::getFloat, 0.1f, Types.REAL),
            // 0.1 + 0.2 = 0.30000000000000004: only the shortest exact float text round-trips it.
            new TypeCase("c_double", "setDouble", (ps, i) -> ps.setDouble(i, 0.1 + 0.2),
                    "getDouble", ResultSet::getDouble, 0.1 + 0.2, Types.DOUBLE),
            new TypeCase("c_num", "setBigDecimal",
                    (ps, i) -> ps.setBigDecimal(i, new BigDecimal("-1234567890.12")),
                    "getBigDecimal", ResultSet::getBigDecimal, new BigDecimal("-1234567890.12"),
                    Types.NUMERIC),
            new TypeCase("c_text", "setString", (ps, i) -> ps.setString(i, "héllo wörld ✓ 'quoted' \\ \"dq\""),
                    "getString", ResultSet::getString, "héllo wörld ✓ 'quoted' \\ \"dq\"", Types.VARCHAR),
            new TypeCase("c_varchar", "setString", (ps, i) -> ps.setString(i, "twenty chars exactly"),
                    "getString", ResultSet::getString, "twenty chars exactly", Types.VARCHAR),
            new TypeCase("c_bool", "setBoolean", (ps, i) -> ps.setBoolean(i, true),
                    "getBoolean", ResultSet::getBoolean, true, Types.BOOLEAN),
            new TypeCase("c_date", "setDate", (ps, i) -> ps.setDate(i, Date.valueOf("2024-02-29")),
                    "getDate", ResultSet::getDate, Date.valueOf("2024-02-29"), Types.DATE),
            new TypeCase("c_ts", "setTimestamp",
                    (ps, i) -> ps.setTimestamp(i, Timestamp.valueOf("2024-02-29 23:59:58.123456")),
                    "getTimestamp", ResultSet::getTimestamp,
                    Timestamp.valueOf("2024-02-29 23:59:58.123456"), Types.TIMESTAMP),
            new TypeCase("c_tstz", "setObject(OffsetDateTime)", (ps, i) -> ps.setObject(i, V_TSTZ),
                    "getObject(OffsetDateTime)", (rs, c) -> rs.getObject(c, OffsetDateTime.class),
                    V_TSTZ.withOffsetSameInstant(ZoneOffset.UTC), Types.TIMESTAMP_WITH_TIMEZONE),
            new TypeCase("c_time", "setTime", (ps, i) -> ps.setTime(i, Time.valueOf("13:14:15")),
                    "getTime", ResultSet::getTime, Time.valueOf("13:14:15"), Types.TIME),
            new TypeCase("c_uuid", "setObject(UUID)",
                    (ps, i) -> ps.setObject(i, UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
                    "getObject(UUID)", (rs, c) -> rs.getObject(c, UUID.class),
                    UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), Types.OTHER),
            new TypeCase("c_bytea", "setBytes", (ps, i) -> ps.setBytes(i, V_BYTEA),
                    "getBytes", ResultSet::getBytes, V_BYTEA, Types.BINARY),
            // A plain setString would be typed varchar, which PostgreSQL refuses for a json column.
            new TypeCase("c_json", "setObject(String, Types.OTHER)",
                    (ps, i) -> ps.setObject(i, "{\"a\": 1, \"b\": [true, null, \"x\"]}", Types.OTHER),
                    "getString", ResultSet::getString, "{\"a\": 1, \"b\": [true, null, \"x\"]}",
                    Types.OTHER));

    static final String TYPES_COLUMNS = "id, " + String.join(", ",
            CASES.stream().map(TypeCase::column).toArray(String[]::new));

    static void insertTypedRows(Connection c, int valuesId, int nullsId) throws SQLException {
        String sql = "INSERT INTO jdbc_types (" + TYPES_COLUMNS + ") VALUES (?"
                + ", ?".repeat(CASES.size()) + ")";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setInt(1, valuesId);
            for (int i = 0; i < CASES.size(); i++) {
                CASES.get(i).set().set(ps, i + 2);
            }
            check("insert row with every setter: update count", ps.executeUpdate(), 1);

            ps.setInt(1, nullsId);
            for (int i = 0; i < CASES.size(); i++) {
                ps.setNull(i + 2, CASES.get(i).nullType());
            }
            check("insert row with setNull everywhere: update count", ps.executeUpdate(), 1);
        }
    }

    static void verifyValuesRow(ResultSet rs, String how) throws SQLException {
        for (TypeCase tc : CASES) {
            check(how + " " + tc.getter() + "(" + tc.column() + ")", tc.get().get(rs, tc.column()),
                    tc.expected());
        }
    }

    static void verifyNullsRow(ResultSet rs, String how) throws SQLException {
        String[] cols = TYPES_COLUMNS.split(",\\s*");
        for (int i = 1; i < cols.length; i++) {
            check(how + " getObject(" + cols[i] + ") is null", rs.getObject(cols[i]), null);
        }
        check(how + " getInt(null) is 0", rs.getInt("c_int"), 0);
        check(how + " wasNull() after getInt(null)", rs.wasNull(), true);
        check(how + " getBoolean(null) is false", rs.getBoolean("c_bool"), false);
        check(how + " wasNull() after getBoolean(null)", rs.wasNull(), true);
    }

    static void selectAndVerify(PreparedStatement ps, int valuesId, int nullsId, String how)
            throws SQLException {
        ps.setInt(1, valuesId);
        try (ResultSet rs = ps.executeQuery()) {
            check(how + " values row found", rs.next(), true);
            verifyValuesRow(rs, how);
            check(how + " one row only", rs.next(), false);
        }
        ps.setInt(1, nullsId);
        try (ResultSet rs = ps.executeQuery()) {
            check(how + " nulls row found", rs.next(), true);
            verifyNullsRow(rs, how);
        }
    }

    // ---------------------------------------------------------------- checks

    static Connection conn;

    static void checkConnect() throws Exception {
        conn = connect("");
        check("isValid", conn.isValid(5), true);
        check("SELECT 1", count(conn, "SELECT 1"), 1L);
        check("getAutoCommit() default", conn.getAutoCommit(), true);
    }

    static void checkCreateTables() throws Exception {
        for (String t : TABLES) {
            exec(conn, "DROP TABLE IF EXISTS " + t);
        }
        exec(conn, "CREATE TABLE jdbc_types ("
                + " id integer PRIMARY KEY,"
                + " c_small smallint, c_int integer, c_big bigint, c_real real,"
                + " c_double double precision, c_num numeric(12,2), c_text text,"
                + " c_varchar varchar(20), c_bool boolean, c_date date, c_ts timestamp,"
                + " c_tstz timestamptz, c_time time, c_uuid uuid, c_bytea bytea, c_json json)");
        exec(conn, "CREATE TABLE jdbc_many (id integer PRIMARY KEY, label text NOT NULL, at timestamp)");
        exec(conn, "CREATE TABLE jdbc_batch (id integer PRIMARY KEY, name text)");
        exec(conn, "CREATE TABLE jdbc_tx (id integer PRIMARY KEY, note text)");
        exec(conn, "CREATE TABLE jdbc_copy (id integer PRIMARY KEY, name text, amount numeric(10,2))");
        exec(conn, "CREATE TABLE jdbc_fetch (id integer PRIMARY KEY)");
        exec(conn, "INSERT INTO jdbc_fetch (id) VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)");
        check("jdbc_types is empty", count(conn, "SELECT count(*) FROM jdbc_types"), 0L);
    }

    /**
     * Rows 3 (the CASES values) and 4 (NULLs) written as SQL literals, so the result-reading checks
     * below do not depend on the setters working.
     */
    static void checkLiteralRows() throws Exception {
        exec(conn, "INSERT INTO jdbc_types (" + TYPES_COLUMNS + ") VALUES"
                + " (3, 32767, -2147483648, 9223372036854775807, 0.1, 0.30000000000000004,"
                + " -1234567890.12, 'héllo wörld ✓ ''quoted'' \\ \"dq\"', 'twenty chars exactly', true,"
                + " '2024-02-29', '2024-02-29 23:59:58.123456', '2024-03-01 01:02:03.654321+05:30',"
                + " '13:14:15', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00017f80ff5c270a',"
                + " '{\"a\": 1, \"b\": [true, null, \"x\"]}'),"
                + " (4" + ", NULL".repeat(CASES.size()) + ")");
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT " + TYPES_COLUMNS + " FROM jdbc_types WHERE id = ?")) {
            selectAndVerify(ps, 3, 4, "literal rows:");
        }
    }

    static final String[] TABLES =
            {"jdbc_types", "jdbc_many", "jdbc_batch", "jdbc_tx", "jdbc_copy", "jdbc_fetch"};

    /** Each setter on its own (one row per column, ids 100..), so a failure names the type. */
    static void checkEachSetterAlone() throws Exception {
        for (int i = 0; i < CASES.size(); i++) {
            TypeCase tc = CASES.get(i);
            String name = tc.setter() + " -> " + tc.getter() + " on " + tc.column();
            int id = 100 + i;
            attempt(name, () -> {
                try (PreparedStatement ins = conn.prepareStatement(
                             "INSERT INTO jdbc_types (id, " + tc.column() + ") VALUES (?, ?)");
                     PreparedStatement sel = conn.prepareStatement(
                             "SELECT " + tc.column() + " FROM jdbc_types WHERE id = ?")) {
                    ins.setInt(1, id);
                    tc.set().set(ins, 2);
                    ins.executeUpdate();
                    sel.setInt(1, id);
                    try (ResultSet rs = sel.executeQuery()) {
                        check(name + ": row found", rs.next(), true);
                        check(name, tc.get().get(rs, tc.column()), tc.expected());
                    }
                }
            });
        }
        exec(conn, "DELETE FROM jdbc_types WHERE id >= 100");
    }

    static void checkSettersAndGetters() throws Exception {
        insertTypedRows(conn, 1, 2);
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT " + TYPES_COLUMNS + " FROM jdbc_types WHERE id = ?")) {
            selectAndVerify(ps, 1, 2, "first run:");
        }
    }

    /** pgjdbc switches to a named server-side statement and binary results from the 5th run on. */
    static void checkRepeatedPreparedSelect() throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT " + TYPES_COLUMNS + " FROM jdbc_types WHERE id = ?")) {
            for (int run = 1; run <= 7; run++) {
                selectAndVerify(ps, 3, 4, "run " + run + ":");
            }
        }
    }

    static void checkRepeatedPreparedInsert() throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_many (id, label, at) VALUES (?, ?, ?)")) {
            for (int i = 1; i <= 10; i++) {
                ps.setInt(1, i);
                ps.setString(2, "row " + i);
                ps.setTimestamp(3, Timestamp.valueOf("2024-01-01 00:00:00." + i));
                int run = i;
                if (!attempt("insert run " + run, () -> check("insert run " + run, ps.executeUpdate(), 1))) {
                    return;
                }
            }
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT label, at FROM jdbc_many WHERE id = ?")) {
            for (int i = 1; i <= 10; i++) {
                ps.setInt(1, i);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    check("select run " + i + " label", rs.getString(1), "row " + i);
                    check("select run " + i + " timestamp", rs.getTimestamp(2),
                            Timestamp.valueOf("2024-01-01 00:00:00." + i));
                }
            }
        }
        check("count after 10 prepared inserts", count(conn, "SELECT count(*) FROM jdbc_many"), 10L);
    }

    static void checkBinaryTransferConnection() throws Exception {
        try (Connection bin = connect("prepareThreshold=1&binaryTransfer=true")) {
            try (PreparedStatement ps = bin.prepareStatement(
                    "SELECT " + TYPES_COLUMNS + " FROM jdbc_types WHERE id = ?")) {
                for (int run = 1; run <= 3; run++) {
                    selectAndVerify(ps, 3, 4, "literal rows, run " + run + ":");
                }
                insertTypedRows(bin, 11, 12);
                for (int run = 1; run <= 3; run++) {
                    selectAndVerify(ps, 11, 12, "rows from setters, run " + run + ":");
                }
            }
        }
    }

    static void checkGeneratedKeys() throws Exception {
        // pgjdbc appends RETURNING "id" to the statement.
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_many (id, label) VALUES (?, ?)", new String[]{"id"})) {
            ps.setInt(1, 100);
            ps.setString(2, "returned");
            check("executeUpdate", ps.executeUpdate(), 1);
            try (ResultSet keys = ps.getGeneratedKeys()) {
                check("a generated key row", keys.next(), true);
                check("generated id", keys.getInt("id"), 100);
            }
        }
    }

    static void checkBatch() throws Exception {
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO jdbc_batch (id, name) VALUES (?, ?)")) {
            for (int i = 1; i <= 3; i++) {
                ps.setInt(1, i);
                ps.setString(2, "name" + i);
                ps.addBatch();
            }
            check("prepared executeBatch update counts", ps.executeBatch(), new int[]{1, 1, 1});
        }
        try (Statement st = conn.createStatement()) {
            st.addBatch("INSERT INTO jdbc_batch (id, name) VALUES (10, 'x'), (11, 'y')");
            st.addBatch("UPDATE jdbc_batch SET name = 'small' WHERE id < 10");
            st.addBatch("DELETE FROM jdbc_batch WHERE id = 11");
            check("statement executeBatch update counts", st.executeBatch(), new int[]{2, 3, 1});
        }
        check("rows after batches", count(conn, "SELECT count(*) FROM jdbc_batch"), 4L);
    }

    static void checkFetchSize() throws Exception {
        // With autocommit off and a fetch size pgjdbc reads through a portal, 3 rows per Execute.
        conn.setAutoCommit(false);
        try (PreparedStatement ps = conn.prepareStatement(
                "SELECT id FROM jdbc_fetch ORDER BY id")) {
            ps.setFetchSize(3);
            List<Integer> ids = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) ids.add(rs.getInt(1));
            }
            check("all rows through a portal with fetch size 3", ids,
                    Arrays.asList(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
        }
        conn.commit();
        conn.setAutoCommit(true);
    }

    static final String[] COLUMN_NAMES = TYPES_COLUMNS.split(",\\s*");
    static final String[] TYPE_NAMES = {"int4", "int2", "int4", "int8", "float4", "float8", "numeric",
            "text", "varchar", "bool", "date", "timestamp", "timestamptz", "time", "uuid", "bytea", "json"};
    static final int[] JDBC_TYPES = {Types.INTEGER, Types.SMALLINT, Types.INTEGER, Types.BIGINT,
            Types.REAL, Types.DOUBLE, Types.NUMERIC, Types.VARCHAR, Types.VARCHAR, Types.BIT,
            Types.DATE, Types.TIMESTAMP, Types.TIMESTAMP, Types.TIME, Types.OTHER, Types.BINARY,
            Types.OTHER};

    static void checkResultSetMetaData() throws Exception {
        try (Statement st = conn.createStatement();
             ResultSet rs = st.executeQuery("SELECT " + TYPES_COLUMNS + " FROM jdbc_types WHERE id = 1")) {
            ResultSetMetaData md = rs.getMetaData();
            check("getColumnCount", md.getColumnCount(), COLUMN_NAMES.length);
            for (int i = 1; i <= COLUMN_NAMES.length; i++) {
                String col = COLUMN_NAMES[i - 1];
                check("getColumnName(" + i + ")", md.getColumnName(i), col);
                check(col + " getColumnType", md.getColumnType(i), JDBC_TYPES[i - 1]);
                check(col + " getColumnTypeName", md.getColumnTypeName(i), TYPE_NAMES[i - 1]);
            }
            check("numeric(12,2) getPrecision", md.getPrecision(7), 12);
            check("numeric(12,2) getScale", md.getScale(7), 2);
            check("varchar(20) getPrecision", md.getPrecision(9), 20);
            // isNullable and getBaseTableName make pgjdbc look the columns up in pg_catalog.
            check("id isNullable", md.isNullable(1), ResultSetMetaData.columnNoNulls);
            check("c_int isNullable", md.isNullable(3), ResultSetMetaData.columnNullable);
            check("getBaseTableName",
                    ((org.postgresql.PGResultSetMetaData) md).getBaseTableName(1), "jdbc_types");
        }
    }

    static void checkGetSchemas() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        check("getDatabaseProductName", md.getDatabaseProductName(), "PostgreSQL");
        List<String> schemas = new ArrayList<>();
        try (ResultSet rs = md.getSchemas()) {
            while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
        }
        check("getSchemas contains public", schemas.contains("public"), true);
    }

    static void checkGetTables() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        List<String> tables = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, "public", "%", new String[]{"TABLE"})) {
            while (rs.next()) {
                if (rs.getString("TABLE_NAME").startsWith("jdbc_")) {
                    tables.add(rs.getString("TABLE_NAME"));
                    check(rs.getString("TABLE_NAME") + " TABLE_TYPE", rs.getString("TABLE_TYPE"), "TABLE");
                    check(rs.getString("TABLE_NAME") + " TABLE_SCHEM", rs.getString("TABLE_SCHEM"), "public");
                }
            }
        }
        check("getTables lists our tables (sorted by name)", tables,
                Arrays.asList("jdbc_batch", "jdbc_copy", "jdbc_fetch", "jdbc_many", "jdbc_tx", "jdbc_types"));
    }

    static void checkGetColumns() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        List<String> names = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, "public", "jdbc_types", null)) {
            while (rs.next()) {
                String col = rs.getString("COLUMN_NAME");
                int pos = rs.getInt("ORDINAL_POSITION");
                names.add(col);
                check(col + " ORDINAL_POSITION", pos, names.size());
                check(col + " TYPE_NAME", rs.getString("TYPE_NAME"), TYPE_NAMES[pos - 1]);
                check(col + " DATA_TYPE", rs.getInt("DATA_TYPE"), JDBC_TYPES[pos - 1]);
                boolean pk = col.equals("id");
                check(col + " NULLABLE", rs.getInt("NULLABLE"),
                        pk ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable);
                check(col + " IS_NULLABLE", rs.getString("IS_NULLABLE"), pk ? "NO" : "YES");
                if (col.equals("c_varchar")) {
                    check("varchar(20) COLUMN_SIZE", rs.getInt("COLUMN_SIZE"), 20);
                }
                if (col.equals("c_num")) {
                    check("numeric(12,2) COLUMN_SIZE", rs.getInt("COLUMN_SIZE"), 12);
                    check("numeric(12,2) DECIMAL_DIGITS", rs.getInt("DECIMAL_DIGITS"), 2);
                }
            }
        }
        check("getColumns names in ordinal order", names, Arrays.asList(COLUMN_NAMES));
    }

    static void checkGetPrimaryKeys() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        try (ResultSet rs = md.getPrimaryKeys(null, "public", "jdbc_types")) {
            check("getPrimaryKeys has a row", rs.next(), true);
            check("primary key COLUMN_NAME", rs.getString("COLUMN_NAME"), "id");
            check("primary key KEY_SEQ", rs.getInt("KEY_SEQ"), 1);
            check("primary key PK_NAME", rs.getString("PK_NAME"), "jdbc_types_pkey");
            check("getPrimaryKeys has one row", rs.next(), false);
        }
    }

    static void checkForeignKeysAndIndexes() throws Exception {
        exec(conn, "DROP TABLE IF EXISTS jdbc_line");
        exec(conn, "DROP TABLE IF EXISTS jdbc_order");
        exec(conn, "CREATE TABLE jdbc_order (id INT PRIMARY KEY, code TEXT)");
        exec(conn, "CREATE UNIQUE INDEX jdbc_order_code ON jdbc_order (code)");
        exec(conn, "CREATE TABLE jdbc_line (id INT PRIMARY KEY, order_id INT, "
                + "CONSTRAINT jdbc_line_order FOREIGN KEY (order_id) REFERENCES jdbc_order (id) "
                + "ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED)");
        exec(conn, "CREATE INDEX jdbc_line_order_idx ON jdbc_line (order_id)");
        DatabaseMetaData md = conn.getMetaData();
        try (ResultSet rs = md.getImportedKeys(null, "public", "jdbc_line")) {
            check("getImportedKeys has a row", rs.next(), true);
            check("imported PKTABLE_NAME", rs.getString("PKTABLE_NAME"), "jdbc_order");
            check("imported PKCOLUMN_NAME", rs.getString("PKCOLUMN_NAME"), "id");
            check("imported FKCOLUMN_NAME", rs.getString("FKCOLUMN_NAME"), "order_id");
            check("imported FK_NAME", rs.getString("FK_NAME"), "jdbc_line_order");
            check("imported PK_NAME", rs.getString("PK_NAME"), "jdbc_order_pkey");
            check("imported DELETE_RULE", rs.getInt("DELETE_RULE"), DatabaseMetaData.importedKeyCascade);
            check("imported UPDATE_RULE", rs.getInt("UPDATE_RULE"), DatabaseMetaData.importedKeyNoAction);
            check("imported DEFERRABILITY", rs.getInt("DEFERRABILITY"),
                    DatabaseMetaData.importedKeyInitiallyDeferred);
            check("getImportedKeys has one row", rs.next(), false);
        }
        try (ResultSet rs = md.getExportedKeys(null, "public", "jdbc_order")) {
            check("getExportedKeys has a row", rs.next(), true);
            check("exported FKTABLE_NAME", rs.getString("FKTABLE_NAME"), "jdbc_line");
            check("getExportedKeys has one row", rs.next(), false);
        }
        try (ResultSet rs = md.getIndexInfo(null, "public", "jdbc_order", false, false)) {
            java.util.List<String> names = new java.util.ArrayList<>();
            while (rs.next()) {
                names.add(rs.getString("INDEX_NAME") + ":" + rs.getBoolean("NON_UNIQUE") + ":"
                        + rs.getString("COLUMN_NAME"));
            }
            java.util.Collections.sort(names);
            check("getIndexInfo", names, Arrays.asList("jdbc_order_code:false:code", "jdbc_order_pkey:false:id"));
        }
        exec(conn, "INSERT INTO jdbc_order VALUES (1, 'a')");
        exec(conn, "INSERT INTO jdbc_line VALUES (10, 1)");
        try {
            exec(conn, "INSERT INTO jdbc_line VALUES (11, 2)");
            fail("an orphan line: no error");
        } catch (SQLException e) {
            check("an orphan line: SQLSTATE", e.getSQLState(), "23503");
        }
        exec(conn, "DELETE FROM jdbc_order WHERE id = 1");
        check("ON DELETE CASCADE", count(conn, "SELECT count(*) FROM jdbc_line"), 0L);
    }

    static void checkTransactions() throws Exception {
        try (Connection other = connect("")) {
            conn.setAutoCommit(false);
            exec(conn, "INSERT INTO jdbc_tx (id, note) VALUES (1, 'committed')");
            check("own uncommitted row visible", count(conn, "SELECT count(*) FROM jdbc_tx"), 1L);
            check("other session does not see it", count(other, "SELECT count(*) FROM jdbc_tx"), 0L);
            conn.commit();
            check("other session sees it after commit", count(other, "SELECT count(*) FROM jdbc_tx"), 1L);

            exec(conn, "INSERT INTO jdbc_tx (id, note) VALUES (2, 'rolled back')");
            exec(conn, "UPDATE jdbc_tx SET note = 'changed' WHERE id = 1");
            conn.rollback();
            check("rolled back insert is gone", count(conn, "SELECT count(*) FROM jdbc_tx"), 1L);
            check("rolled back update is gone",
                    count(conn, "SELECT count(*) FROM jdbc_tx WHERE note = 'committed'"), 1L);
            conn.setAutoCommit(true);
            check("other session sees one row", count(other, "SELECT count(*) FROM jdbc_tx"), 1L);
        }
    }

    static void checkErrors() throws Exception {
        check("duplicate key SQLState",
                sqlState(conn, "INSERT INTO jdbc_tx (id, note) VALUES (1, 'dup')"), "23505");
        check("works after duplicate key", count(conn, "SELECT count(*) FROM jdbc_tx"), 1L);
        check("undefined table SQLState", sqlState(conn, "SELECT * FROM jdbc_no_such_table"), "42P01");
        check("works after undefined table", count(conn, "SELECT 1"), 1L);

        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_tx (id, note) VALUES (?, ?)")) {
            ps.setInt(1, 1);
            ps.setString(2, "dup");
            String state;
            try {
                ps.executeUpdate();
                state = "(no error)";
            } catch (SQLException e) {
                state = e.getSQLState();
            }
            check("prepared duplicate key SQLState", state, "23505");
        }

        conn.setAutoCommit(false);
        check("error inside a transaction", sqlState(conn, "SELECT * FROM jdbc_no_such_table"), "42P01");
        check("aborted transaction refuses statements", sqlState(conn, "SELECT 1"), "25P02");
        conn.rollback();
        conn.setAutoCommit(true);
        check("works after rollback of a failed transaction", count(conn, "SELECT 1"), 1L);
    }

    static void checkCopy() throws Exception {
        CopyManager copy = conn.unwrap(PGConnection.class).getCopyAPI();
        attempt("copyIn CSV", () -> {
            String csv = "1,alpha,1.50\n2,\"be,ta\",2.25\n3,,\n";
            long in = copy.copyIn("COPY jdbc_copy (id, name, amount) FROM STDIN WITH (FORMAT csv)",
                    new StringReader(csv));
            check("copyIn row count", in, 3L);
            check("rows after copyIn", count(conn, "SELECT count(*) FROM jdbc_copy"), 3L);
            check("copyIn NULL amount",
                    count(conn, "SELECT count(*) FROM jdbc_copy WHERE amount IS NULL"), 1L);
        });
        attempt("copyOut of a query, CSV", () -> {
            StringWriter out = new StringWriter();
            long n = copy.copyOut("COPY (SELECT id, name, amount FROM jdbc_copy ORDER BY id)"
                    + " TO STDOUT WITH (FORMAT csv)", out);
            check("copyOut row count", n, 3L);
            check("copyOut CSV text", out.toString(), "1,alpha,1.50\n2,\"be,ta\",2.25\n3,,\n");
        });
        attempt("copyOut of a table, text format", () -> {
            StringWriter text = new StringWriter();
            copy.copyOut("COPY jdbc_copy TO STDOUT", text);
            check("copyOut of a table, text format", text.toString(),
                    "1\talpha\t1.50\n2\tbe,ta\t2.25\n3\t\\N\t\\N\n");
        });
    }

    /** The JVM's zone is the session's: instants and local times convert through it. */
    static void checkSessionTimeZone() throws Exception {
        String zone = TimeZone.getDefault().getID();
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SHOW TimeZone")) {
            rs.next();
            check("TimeZone is the JVM's", rs.getString(1), zone);
        }
        exec(conn, "CREATE TABLE jdbc_zone (id integer PRIMARY KEY, at timestamptz, local timestamp)");
        Timestamp noon = Timestamp.valueOf("2024-07-15 12:00:00");
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO jdbc_zone VALUES (?, ?, ?)")) {
            ps.setInt(1, 1);
            ps.setTimestamp(2, noon);
            ps.setTimestamp(3, noon);
            ps.executeUpdate();
        }
        exec(conn, "INSERT INTO jdbc_zone VALUES (2, '2024-07-15 12:00', '2024-07-15 12:00')");
        for (int id = 1; id <= 2; id++) {
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT at, local, at::timestamp, local::timestamptz = at, extract(hour FROM at)"
                            + " FROM jdbc_zone WHERE id = ?")) {
                ps.setInt(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    check("row " + id + " timestamptz read back", rs.getTimestamp(1), noon);
                    check("row " + id + " timestamp read back", rs.getTimestamp(2), noon);
                    check("row " + id + " timestamptz as local time", rs.getTimestamp(3), noon);
                    check("row " + id + " local time is the instant", rs.getBoolean(4), true);
                    check("row " + id + " hour in the session zone", rs.getInt(5), 12);
                    OffsetDateTime odt = rs.getObject(1, OffsetDateTime.class);
                    check("row " + id + " OffsetDateTime instant", odt.toInstant(), noon.toInstant());
                }
            }
        }
    }

    /** Arrays: setArray with createArrayOf, getArray back, in text and binary transfer. */
    static void checkArrays() throws Exception {
        exec(conn, "DROP TABLE IF EXISTS jdbc_arrays");
        exec(conn, "CREATE TABLE jdbc_arrays (id INT PRIMARY KEY, nums INT[], tags TEXT[], prices NUMERIC(8,2)[])");
        for (String params : new String[]{"", "prepareThreshold=1&binaryTransfer=true"}) {
            String mode = params.isEmpty() ? "text" : "binary";
            int id = params.isEmpty() ? 1 : 2;
            try (Connection c = connect(params)) {
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_arrays VALUES (?, ?, ?, ?)")) {
                    ps.setInt(1, id);
                    ps.setArray(2, c.createArrayOf("int4", new Integer[]{1, null, 3}));
                    ps.setArray(3, c.createArrayOf("text", new String[]{"a,b", "say \"hi\"", ""}));
                    ps.setArray(4, c.createArrayOf("numeric", new java.math.BigDecimal[]{new java.math.BigDecimal("1.50")}));
                    check(mode + ": insert with setArray", ps.executeUpdate(), 1);
                }
                for (int run = 1; run <= 3; run++) {
                    try (PreparedStatement ps = c.prepareStatement(
                            "SELECT nums, tags, prices FROM jdbc_arrays WHERE id = ? AND ? = ANY(nums)")) {
                        ps.setInt(1, id);
                        ps.setInt(2, 3);
                        try (ResultSet rs = ps.executeQuery()) {
                            check(mode + " run " + run + ": row found by = ANY", rs.next(), true);
                            check(mode + " run " + run + ": int[] getArray",
                                    java.util.Arrays.asList((Object[]) rs.getArray(1).getArray()),
                                    java.util.Arrays.asList(1, null, 3));
                            check(mode + " run " + run + ": text[] getArray",
                                    java.util.Arrays.asList((Object[]) rs.getArray(2).getArray()),
                                    java.util.Arrays.asList("a,b", "say \"hi\"", ""));
                            check(mode + " run " + run + ": numeric[] getArray",
                                    java.util.Arrays.asList((Object[]) rs.getArray(3).getArray()),
                                    java.util.Arrays.asList(new java.math.BigDecimal("1.50")));
                            check(mode + " run " + run + ": column type name",
                                    rs.getMetaData().getColumnTypeName(1), "_int4");
                        }
                    }
                }
            }
        }
        DatabaseMetaData md = conn.getMetaData();
        try (ResultSet rs = md.getColumns(null, "public", "jdbc_arrays", "nums")) {
            check("getColumns of an int[] column", rs.next(), true);
            check("int[] DATA_TYPE is ARRAY", rs.getInt("DATA_TYPE"), java.sql.Types.ARRAY);
            check("int[] TYPE_NAME", rs.getString("TYPE_NAME"), "_int4");
        }
    }

    public static void main(String[] args) throws Exception {
        Class.forName("org.postgresql.Driver");
        System.out.println("jdbc: " + baseUrl() + " as " + env("PGUSER", "postgres"));

        step("connect", JdbcClient::checkConnect);
        if (conn == null) {
            fail("no connection, nothing else can run");
            System.exit(1);
        }
        step("create tables", JdbcClient::checkCreateTables);
        step("rows written as SQL literals, read with getters", JdbcClient::checkLiteralRows);
        step("each setter alone", JdbcClient::checkEachSetterAlone);
        step("setters and getters", JdbcClient::checkSettersAndGetters);
        step("prepared insert and select run 10 times", JdbcClient::checkRepeatedPreparedInsert);
        step("prepared select of every type run 7 times", JdbcClient::checkRepeatedPreparedSelect);
        step("prepareThreshold=1 binaryTransfer=true", JdbcClient::checkBinaryTransferConnection);
        step("generated keys", JdbcClient::checkGeneratedKeys);
        step("batch", JdbcClient::checkBatch);
        step("fetch size", JdbcClient::checkFetchSize);
        step("ResultSetMetaData", JdbcClient::checkResultSetMetaData);
        step("DatabaseMetaData.getSchemas", JdbcClient::checkGetSchemas);
        step("DatabaseMetaData.getTables", JdbcClient::checkGetTables);
        step("DatabaseMetaData.getColumns", JdbcClient::checkGetColumns);
        step("DatabaseMetaData.getPrimaryKeys", JdbcClient::checkGetPrimaryKeys);
        step("foreign keys and indexes (getImportedKeys, getExportedKeys, getIndexInfo)",
                JdbcClient::checkForeignKeysAndIndexes);
        step("transactions", JdbcClient::checkTransactions);
        step("errors", JdbcClient::checkErrors);
        step("CopyManager", JdbcClient::checkCopy);
        step("session time zone", JdbcClient::checkSessionTimeZone);
        step("arrays (setArray, getArray)", JdbcClient::checkArrays);

        if (conn != null) conn.close();
        System.out.println("jdbc: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
