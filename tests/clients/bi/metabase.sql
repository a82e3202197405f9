-- Metabase — SQL sent to PostgreSQL during connection test and metadata sync
-- Format: statements separated by a line containing only "-- next". Each statement is preceded by
-- metadata comment lines "-- source:", "-- purpose:", optional "-- note:", "-- tag:" (command tag)
-- and "-- rows:" (rows returned on PostgreSQL 15.18 with tests/psql/catalog.sql loaded, user postgres).
-- Everything after the metadata lines is sent verbatim (some clients really send leading comments).
-- Statements carry no trailing semicolon. Bind parameters were replaced by literals for schema
-- 'public' / table 'city'; oid parameters are written as 'public.city'::regclass (or ::regnamespace)
-- so they resolve on any server.
-- Metabase PostgreSQL driver: connection check, describe-database, describe-fields/-fks/-indexes, fingerprint sample.
-- Metabase talks JDBC (pgjdbc 42.7.x bundled): extended protocol, unnamed statements; after 5 executions of the
-- same SQL pgjdbc switches to named server-side statements (prepareThreshold=5). Bound values are sent as text
-- with type oid 0 or varchar. The wire forms below follow a capture of Metabase v0.62 syncing PostgreSQL 16 and the
-- cited source (metabase/metabase src/metabase/driver/postgres.clj builds most of them with HoneySQL).

-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (setClientInfo ApplicationName); value as captured from Metabase v0.62
-- purpose: connection init: pgjdbc sends the application name Metabase configures (plain SET, simple value)
-- tag: SET
-- rows: 0
SET application_name = 'Metabase v0.62.1.5 [d4fe74c4-96c3-4812-b3ae-35e513752b13]'
-- next
-- source: metabase/metabase/src/metabase/driver/sql_jdbc/connection.clj (can-connect-with-spec?)
-- purpose: "can connect?" check when the database is added / before each sync
-- tag: SELECT 1
-- rows: 1
SELECT 1
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (getTransactionIsolation)
-- purpose: connection pool (c3p0) reads the default isolation level
-- tag: SHOW
-- rows: 1
SHOW TRANSACTION ISOLATION LEVEL
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (getCatalog, 42.7.x)
-- purpose: connection pool reads the current catalog
-- tag: SELECT 1
-- rows: 1
select current_catalog
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (setTransactionIsolation), as captured from Metabase v0.62 (metabase/metabase/src/metabase/driver/sql_jdbc/execute.clj sets the isolation of sync connections)
-- purpose: sync/queries run READ UNCOMMITTED, then the pooled connection is reset
-- tag: SET
-- rows: 0
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (setTransactionIsolation)
-- purpose: reset of the pooled connection
-- tag: SET
-- rows: 0
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgDatabaseMetaData.java (getSchemas, pgjdbc 42.7.x) called by metabase/metabase/src/metabase/driver/sql_jdbc/sync/describe_database.clj (all-schemas)
-- purpose: describe-database: list schemas (syncable-schemas then drops information_schema, pg_catalog)
-- tag: SELECT 4
-- rows: 4
SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "TABLE_SCHEM"
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (sql-jdbc.sync/current-user-table-privileges :postgres)
-- purpose: describe-database: which tables the user may SELECT/INSERT/UPDATE/DELETE
-- tag: SELECT 4
-- rows: 4
with table_privileges as (
 select
   NULL as role,
   t.schemaname as schema,
   t.objectname as table,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
   pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
 from (
   select schemaname, tablename as objectname from pg_catalog.pg_tables
   union
   select schemaname, viewname as objectname from pg_catalog.pg_views
   union
   select schemaname, matviewname as objectname from pg_catalog.pg_matviews
 ) t
 where t.schemaname !~ '^pg_'
   and t.schemaname <> 'information_schema'
   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
)
select t.*
from table_privileges t
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (get-tables-sql, describe-database*)
-- purpose: describe-database: tables/views with comment and estimated row count ($1=0 $2=0 $3=^pg_ $4=information_schema $5=public inlined)
-- note: wire form as captured from Metabase v0.62 (bind parameters inlined); older versions select "stat"."n_live_tup" without NULLIF
-- tag: SELECT 3
-- rows: 3
SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", NULLIF("stat"."n_live_tup", 0) AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public')) ORDER BY "type" ASC, "schema" ASC, "name" ASC
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (driver/db-default-timezone :postgres)
-- purpose: sync: database default time zone
-- tag: SHOW
-- rows: 1
show timezone
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (enum-types)
-- purpose: describe-fields pre-processing: find enum types
-- tag: SELECT 0
-- rows: 0
SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (sql-jdbc.sync/describe-fields-sql :postgres)
-- purpose: describe-fields: all columns of the synced schema with type, position, pk, comment, required/auto-increment flags ($1=ALWAYS $2=public $3=public inlined)
-- note: wire form of Metabase v0.62 (adds database-default/-generated/-nullable to the columns in the cited file)
-- tag: SELECT 13
-- rows: 13
SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required", "column_default" AS "database-default", (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment", "is_generated" = 'ALWAYS' AS "database-is-generated", "is_nullable" = 'YES' AS "database-is-nullable" FROM "information_schema"."columns" AS "c" LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ('public')) UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", NULL AS "database-default", FALSE AS "database-is-auto-increment", FALSE AS "database-is-generated", FALSE AS "database-is-nullable" FROM "pg_catalog"."pg_class" AS "pc" INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ('public')) ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgDatabaseMetaData.java (getColumns, pgjdbc 42.7.x) from metabase/metabase/src/metabase/driver/sql_jdbc/sync/describe_table.clj (jdbc-fields-metadata)
-- purpose: per-table JDBC column metadata ($1=public $2=city inlined)
-- tag: SELECT 7
-- rows: 7
SELECT * FROM (SELECT current_database() AS current_database, n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull  OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype  FROM pg_catalog.pg_namespace n  JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid)  JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid)  JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid)  LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum)  LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)  LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class')  LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog')  WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped  AND n.nspname LIKE 'public' AND c.relname LIKE 'city') c WHERE true  ORDER BY nspname,c.relname,attnum
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgDatabaseMetaData.java (getPrimaryKeys, pgjdbc 42.7.x) from metabase/metabase/src/metabase/driver/sql_jdbc/sync/describe_table.clj (get-table-pks)
-- purpose: per-table primary key columns ($1=public $2=city inlined)
-- note: "PK_NAME"FROM has no space before FROM: that is what pgjdbc really sends
-- tag: SELECT 1
-- rows: 1
SELECT        result.TABLE_CAT AS "TABLE_CAT",        result.TABLE_SCHEM AS "TABLE_SCHEM",        result.TABLE_NAME AS "TABLE_NAME",        result.COLUMN_NAME AS "COLUMN_NAME",        result.KEY_SEQ AS "KEY_SEQ",        result.PK_NAME AS "PK_NAME"FROM      (SELECT current_database() AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,   information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM, i.indnkeyatts as KEY_COUNT FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true  AND n.nspname = 'public' AND ct.relname = 'city' AND i.indisprimary  ) result where  result.A_ATTNUM = (result.KEYS).x AND result.KEY_SEQ <= KEY_COUNT  ORDER BY result.table_name, result.pk_name, result.key_seq
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (sql-jdbc.sync/describe-fks-sql :postgres)
-- purpose: describe-fks: foreign keys of the schema ($1=public inlined)
-- tag: SELECT 0
-- rows: 0
SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND ("c"."contype" = 'f'::char) AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) AND ("fk_ns"."nspname" IN ('public')) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC
-- next
-- source: metabase/metabase/src/metabase/driver/postgres.clj (sql-jdbc.sync/describe-indexes-sql :postgres)
-- purpose: describe-indexes: first column of every non-partial index (index sync is currently switched off in Metabase, kept for completeness)
-- note: rendered by hand from the HoneySQL form (function-name case/quoting may differ slightly from the real output)
-- tag: SELECT 1
-- rows: 1
SELECT "tmp"."table-schema", "tmp"."table-name", TRIM(BOTH '"' FROM PG_CATALOG.PG_GET_INDEXDEF("tmp"."ci_oid", "tmp"."pos", FALSE)) AS "field-name" FROM (SELECT "n"."nspname" AS "table-schema", "ct"."relname" AS "table-name", "ci"."oid" AS "ci_oid", (INFORMATION_SCHEMA._PG_EXPANDARRAY("i"."indkey")).n AS "pos" FROM "pg_catalog"."pg_class" AS "ct" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "ct"."relnamespace" = "n"."oid" INNER JOIN "pg_catalog"."pg_index" AS "i" ON "ct"."oid" = "i"."indrelid" INNER JOIN "pg_catalog"."pg_class" AS "ci" ON "ci"."oid" = "i"."indexrelid" WHERE (PG_CATALOG.PG_GET_EXPR("i"."indpred", "i"."indrelid") IS NULL) AND n.nspname !~ '^information_schema|catalog_history|pg_' AND ("n"."nspname" IN ('public')) AND ("ct"."relname" IN ('city'))) AS "tmp" WHERE "tmp"."pos" = 1
-- next
-- source: metabase/metabase/src/metabase/driver/common/table_rows_sample.clj + metabase/metabase/src/metabase/driver/sql_jdbc/sync/describe_table.clj
-- purpose: fingerprinting: sample rows, text columns truncated with SUBSTRING (leading comment line is part of the query)
-- tag: SELECT 3
-- rows: 3
-- Metabase
SELECT "public"."city"."id" AS "id", SUBSTRING("public"."city"."name", 1, 1234) AS "substring4476", SUBSTRING("public"."city"."country", 1, 1234) AS "substring4477", "public"."city"."population" AS "population", "public"."city"."area" AS "area", "public"."city"."founded" AS "founded", SUBSTRING("public"."city"."note", 1, 1234) AS "substring4478" FROM "public"."city" LIMIT 10000
-- next
-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgResultSetMetaData.java (fetchFieldMetaData)
-- purpose: pgjdbc looks up nullability/auto-increment of result columns (ResultSetMetaData.isNullable/isAutoIncrement) for the sample query; oid/attnum list is built from the RowDescription table oids
-- note: pgjdbc inlines the table oid from RowDescription (16385 on the reference server); written here as 'public.city'::regclass::oid
-- tag: SELECT 3
-- rows: 3
SELECT c.oid, a.attnum, a.attname, c.relname, n.nspname, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), a.attidentity != '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%' FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON (c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (c.oid = a.attrelid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) LEFT JOIN pg_catalog.pg_attrdef d ON (d.adrelid = a.attrelid AND d.adnum = a.attnum) JOIN (SELECT 'public.city'::regclass::oid AS oid , 2 AS attnum UNION ALL SELECT 'public.city'::regclass::oid, 3 UNION ALL SELECT 'public.city'::regclass::oid, 4) vals ON (c.oid = vals.oid AND a.attnum = vals.attnum) where c.oid in ('public.city'::regclass::oid)
-- next
-- source: metabase/metabase/src/metabase/driver/sql/query_processor.clj (MBQL count question)
-- purpose: a GUI question "count of City"; the leading comment line is sent as part of the query
-- tag: SELECT 1
-- rows: 1
-- Metabase:: userID: 1 queryType: MBQL queryHash: a54de39466cbf3e82ff09c5a9a2bccf1f922bf9fd59b2717c1ad5e09a1c0bfbc
SELECT COUNT(*) AS "count" FROM "public"."city"
