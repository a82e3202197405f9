-- Grafana — SQL sent to PostgreSQL when browsing schemas/tables/columns
-- Format: statements separated by a line containing only "-- next". Each statement is preceded by
-- metadata comment lines "-- source:", "-- purpose:", optional "-- note:", "-- tag:" (command tag)
-- and "-- rows:" (rows returned on PostgreSQL 15.18 with tests/psql/catalog.sql loaded, user postgres).
-- Everything after the metadata lines is sent verbatim (some clients really send leading comments).
-- Statements carry no trailing semicolon. Bind parameters were replaced by literals for schema
-- 'public' / table 'city'; oid parameters are written as 'public.city'::regclass (or ::regnamespace)
-- so they resolve on any server.
-- Grafana PostgreSQL data source (core plugin grafana-postgresql-datasource): connection check, version/timescaledb
-- detection, schema/table/column listing of the SQL query builder, and two typical generated queries.
-- Wire protocol: the Go backend uses pgx v5 with its default QueryExecModeCacheStatement, i.e. extended protocol
-- with named prepared statements "stmtcache_<sha256>" (Parse/Describe once, then Bind/Execute), except Ping
-- ("-- ping") and argument-less Exec which use the simple Query message. No $n parameters in these queries
-- except the schema.go ones (shown inlined).

-- source: jackc/pgx/pgconn/pgconn.go (PgConn.Ping), called by grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/pgx/handler_checkhealth.go
-- purpose: data source "Save & test" health check and pgxpool liveness ping: a comment-only simple Query; the server must answer EmptyQueryResponse + ReadyForQuery
-- tag: EMPTY
-- rows: 0
-- ping
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (getVersion)
-- purpose: config page auto-detects the server version (expects e.g. 1500 for 15.x)
-- tag: SELECT 1
-- rows: 1
SELECT current_setting('server_version_num')::int/100 as version
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (getTimescaleDBVersion)
-- purpose: config page checks for the timescaledb extension (0 rows = not installed)
-- tag: SELECT 0
-- rows: 0
SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (showSchemas)
-- purpose: query builder: schema dropdown
-- tag: SELECT 2
-- rows: 2
SELECT schema_name AS "name"
    FROM information_schema.schemata
    WHERE schema_name NOT IN ('information_schema',
                              'pg_catalog',
                              'pg_toast',
                              '_timescaledb_cache',
                              '_timescaledb_catalog',
                              '_timescaledb_internal',
                              '_timescaledb_config',
                              'timescaledb_information',
                              'timescaledb_experimental')
    ORDER BY schema_name
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (showTables, no schema) via datasource.ts fetchTables
-- purpose: query builder / code completion: table dropdown; tables in the search_path are unqualified, others schema-qualified
-- tag: SELECT 4
-- rows: 4
SELECT
    CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      THEN quote_ident(table_name)
      ELSE quote_ident(table_schema) || '.' || quote_ident(table_name)
    END AS "table"
    FROM information_schema.tables
    WHERE quote_ident(table_schema) NOT IN ('information_schema',
                             'pg_catalog',
                             '_timescaledb_cache',
                             '_timescaledb_catalog',
                             '_timescaledb_internal',
                             '_timescaledb_config',
                             'timescaledb_information',
                             'timescaledb_experimental')
    ORDER BY CASE WHEN 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          ) THEN 0 ELSE 1 END, 1
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (showTables('public'))
-- purpose: table dropdown for one schema
-- tag: SELECT 3
-- rows: 3
SELECT quote_ident(table_name) AS "table"
      FROM information_schema.tables
      WHERE quote_ident(table_schema) = 'public'
      ORDER BY 1
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (getSchema('city')) via datasource.ts fetchFields
-- purpose: query builder: column list of an unqualified table (resolved through search_path)
-- tag: SELECT 7
-- rows: 7
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('city'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('city'))[1]
          AND quote_ident(table_name) = (parse_ident('city'))[2]
        ELSE quote_ident(table_name) = 'city'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/postgresMetaQuery.ts (getSchema('sales.orders'))
-- purpose: query builder: column list of a schema-qualified table (parse_ident splits it)
-- tag: SELECT 3
-- rows: 3
SELECT quote_ident(column_name) AS "column", data_type AS "type"
    FROM information_schema.columns
    WHERE
      CASE WHEN array_length(parse_ident('sales.orders'),1) = 2
        THEN quote_ident(table_schema) = (parse_ident('sales.orders'))[1]
          AND quote_ident(table_name) = (parse_ident('sales.orders'))[2]
        ELSE quote_ident(table_name) = 'sales.orders'
          AND 
          quote_ident(table_schema) IN (
          SELECT
            CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
          FROM
            generate_series(
              array_lower(string_to_array(current_setting('search_path'),','),1),
              array_upper(string_to_array(current_setting('search_path'),','),1)
            ) as i,
            string_to_array(current_setting('search_path'),',') s
          )
      END
-- next
-- source: grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/schema.go (querySchemas)
-- purpose: SQL-expressions schema service: list schemas
-- tag: SELECT 2
-- rows: 2
SELECT schema_name FROM information_schema.schemata
		 WHERE schema_name NOT LIKE 'pg_%' AND schema_name != 'information_schema'
		 ORDER BY schema_name
-- next
-- source: grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/schema.go (queryTables, $1=public)
-- purpose: schema service: list tables and views of a schema
-- tag: SELECT 3
-- rows: 3
SELECT table_name FROM information_schema.tables
		 WHERE table_schema = 'public' AND table_type IN ('BASE TABLE', 'VIEW')
		 ORDER BY table_name
-- next
-- source: grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/schema.go (queryColumns, $1=public $2=city)
-- purpose: schema service: columns with types and numeric precision/scale
-- tag: SELECT 7
-- rows: 7
SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale
		 FROM information_schema.columns
		 WHERE table_schema = 'public' AND table_name = 'city'
		 ORDER BY ordinal_position
-- next
-- source: grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/schema.go (ColumnValues)
-- purpose: schema service: distinct values of columns (filter suggestions)
-- tag: SELECT 5
-- rows: 5
SELECT 'country' AS col_name, "country"::text AS val FROM (SELECT DISTINCT "country" FROM "public"."city" WHERE "country" IS NOT NULL ORDER BY "country" LIMIT 100) sub_0 UNION ALL SELECT 'name' AS col_name, "name"::text AS val FROM (SELECT DISTINCT "name" FROM "public"."city" WHERE "name" IS NOT NULL ORDER BY "name" LIMIT 100) sub_1
-- next
-- source: grafana/grafana/public/app/plugins/datasource/grafana-postgresql-datasource/sqlUtil.ts (toRawSql)
-- purpose: query builder output (columns name, population; default limit 50); note the trailing space
-- tag: SELECT 3
-- rows: 3
SELECT name, population FROM city LIMIT 50
-- next
-- source: grafana/grafana/pkg/tsdb/grafana-postgresql-datasource/macros.go ($__timeGroupAlias, $__timeFilter expanded)
-- purpose: typical time-series panel: SELECT $__timeGroupAlias(at, 1h), avg(temp) AS "temp" FROM measurement WHERE $__timeFilter(at) GROUP BY 1 ORDER BY 1
-- tag: SELECT 1
-- rows: 1
SELECT floor(extract(epoch from at)/3600)*3600 AS "time", avg(temp) AS "temp" FROM measurement WHERE at BETWEEN '2024-07-01T00:00:00Z' AND '2024-07-02T00:00:00Z' GROUP BY 1 ORDER BY 1
