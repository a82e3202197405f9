-- Superset / SQLAlchemy — SQL sent to PostgreSQL when browsing schemas/tables/columns
-- Format: statements separated by a line containing only "-- next". Each statement is preceded by
-- metadata comment lines "-- source:", "-- purpose:", optional "-- note:", "-- tag:" (command tag)
-- and "-- rows:" (rows returned on PostgreSQL 15.18 with tests/psql/catalog.sql loaded, user postgres).
-- Everything after the metadata lines is sent verbatim (some clients really send leading comments).
-- Statements carry no trailing semicolon. Bind parameters were replaced by literals for schema
-- 'public' / table 'city'; oid parameters are written as 'public.city'::regclass (or ::regnamespace)
-- so they resolve on any server.
-- Superset with a PostgreSQL database (driver psycopg2, default for postgresql:// URIs). Superset lists
-- schemas/tables/columns through SQLAlchemy's Inspector (get_schema_names, get_table_names, get_foreign_table_names,
-- get_view_names, get_columns, get_pk_constraint, get_foreign_keys, get_indexes, get_unique_constraints,
-- get_check_constraints, get_table_comment, get_view_definition). Superset pins SQLAlchemy 1.4
-- (apache/superset/pyproject.toml: "sqlalchemy>=1.4, <2"), so both the 1.4.54 and the 2.1.9 dialect queries are listed;
-- they were captured by running the inspector (psycopg2 2.9) against PostgreSQL 15.18 with log_statement=all.
-- psycopg2 interpolates parameters client-side and uses the simple query protocol.
-- IMPORTANT: PGDialect.initialize parses `select pg_catalog.version()` with a regex that needs
-- "PostgreSQL <major>.<minor>" in the string; any other version() text makes the connection fail.

-- source: psycopg2 (libpq) transaction handling
-- purpose: psycopg2 in its default (non-autocommit) mode wraps every inspector call in BEGIN ... ROLLBACK
-- tag: BEGIN
-- rows: 0
BEGIN
-- next
-- source: psycopg2 (libpq) transaction handling
-- purpose: end of every inspector call
-- tag: ROLLBACK
-- rows: 0
ROLLBACK
-- next
-- source: apache/superset/superset/db_engine_specs/postgres.py (PostgresEngineSpec.get_catalog_names)
-- purpose: Superset: list "catalogs" (= databases) for the catalog dropdown
-- tag: SELECT 2
-- rows: 2
SELECT datname FROM pg_database
WHERE datistemplate = false
-- next
-- source: apache/superset/superset/db_engine_specs/postgres.py (PostgresEngineSpec.get_prequeries)
-- purpose: Superset SQL Lab: run queries in the selected schema
-- tag: SET
-- rows: 0
set search_path = "public"
-- next
-- source: apache/superset/superset/db_engine_specs/postgres.py (PostgresEngineSpec.get_cancel_query_id)
-- purpose: Superset SQL Lab: remember the backend pid so the query can be cancelled
-- tag: SELECT 1
-- rows: 1
SELECT pg_backend_pid()
-- next
-- source: apache/superset/superset/db_engine_specs/base.py (BaseEngineSpec.select_star)
-- purpose: Superset dataset preview / "SELECT *" button
-- tag: SELECT 3
-- rows: 3
SELECT *
FROM public.city
LIMIT 100
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/psycopg2.py / sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): first connection (dialect initialize)
-- tag: SELECT 0
-- rows: 0
SELECT t.oid, typarray
FROM pg_type t JOIN pg_namespace ns
    ON typnamespace = ns.oid
WHERE typname = 'hstore'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): first connection (dialect initialize)
-- tag: SELECT 1
-- rows: 1
select pg_catalog.version()
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): first connection (dialect initialize)
-- tag: SELECT 1
-- rows: 1
select current_schema()
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): first connection (dialect initialize)
-- tag: SHOW
-- rows: 1
show transaction isolation level
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): first connection (dialect initialize)
-- tag: SHOW
-- rows: 1
show standard_conforming_strings
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_schema_names)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_schema_names()
-- tag: SELECT 3
-- rows: 3
SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY nspname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.has_table)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.has_table(city)
-- tag: SELECT 1
-- rows: 1
select relname from pg_class c join pg_namespace n on n.oid=c.relnamespace where n.nspname='public' and relname='city'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_table_names)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_table_names(public)
-- tag: SELECT 2
-- rows: 2
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind in ('r', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_table_names)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_table_names(sales)
-- tag: SELECT 1
-- rows: 1
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sales' AND c.relkind in ('r', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_view_names)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_view_names(public)
-- tag: SELECT 1
-- rows: 1
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_foreign_table_names)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_foreign_table_names()
-- tag: SELECT 0
-- rows: 0
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'f'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_view_definition)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_view_definition(big_city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_get_viewdef(c.oid) view_def FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = 'big_city' AND c.relkind IN ('v', 'm')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(city)
-- tag: SELECT 1
-- rows: 1
            SELECT c.oid
            FROM pg_catalog.pg_class c
            LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'public')
            AND c.relname = 'city' AND c.relkind in
            ('r', 'v', 'm', 'f', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 7
-- rows: 7
            SELECT a.attname,
              pg_catalog.format_type(a.atttypid, a.atttypmod),
              (
                SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                FROM pg_catalog.pg_attrdef d
                WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
                AND a.atthasdef
              ) AS DEFAULT,
              a.attnotnull,
              a.attrelid as table_oid,
              pgd.description as comment,
              a.attgenerated as generated,
                              (SELECT json_build_object(
                    'always', a.attidentity = 'a',
                    'start', s.seqstart,
                    'increment', s.seqincrement,
                    'minvalue', s.seqmin,
                    'maxvalue', s.seqmax,
                    'cache', s.seqcache,
                    'cycle', s.seqcycle)
                FROM pg_catalog.pg_sequence s
                JOIN pg_catalog.pg_class c on s.seqrelid = c."oid"
                WHERE c.relkind = 'S'
                AND a.attidentity != ''
                AND s.seqrelid = pg_catalog.pg_get_serial_sequence(
                    a.attrelid::regclass::text, a.attname
                )::regclass::oid
                ) as identity_options                
            FROM pg_catalog.pg_attribute a
            LEFT JOIN pg_catalog.pg_description pgd ON (
                pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum)
            WHERE a.attrelid = 'public.city'::regclass
            AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(city)
-- tag: SELECT 5
-- rows: 5
            SELECT t.typname as "name",
               pg_catalog.format_type(t.typbasetype, t.typtypmod) as "attype",
               not t.typnotnull as "nullable",
               t.typdefault as "default",
               pg_catalog.pg_type_is_visible(t.oid) as "visible",
               n.nspname as "schema"
            FROM pg_catalog.pg_type t
               LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype = 'd'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(city)
-- tag: SELECT 0
-- rows: 0
            SELECT t.typname as "name",
               -- no enum defaults in 8.4 at least
               -- t.typdefault as "default",
               pg_catalog.pg_type_is_visible(t.oid) as "visible",
               n.nspname as "schema",
               e.enumlabel as "label"
            FROM pg_catalog.pg_type t
                 LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                 LEFT JOIN pg_catalog.pg_enum e ON t.oid = e.enumtypid
            WHERE t.typtype = 'e'
        ORDER BY "schema", "name", e.oid
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_pk_constraint)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_pk_constraint(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
                SELECT a.attname
                FROM pg_attribute a JOIN (
                    SELECT unnest(ix.indkey) attnum,
                           generate_subscripts(ix.indkey, 1) ord
                    FROM pg_index ix
                    WHERE ix.indrelid = 'public.city'::regclass AND ix.indisprimary
                    ) k ON a.attnum=k.attnum
                WHERE a.attrelid = 'public.city'::regclass
                ORDER BY k.ord
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_pk_constraint)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_pk_constraint(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
        SELECT conname
           FROM  pg_catalog.pg_constraint r
           WHERE r.conrelid = 'public.city'::regclass AND r.contype = 'p'
           ORDER BY 1
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_foreign_keys)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_foreign_keys(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
          SELECT r.conname,
                pg_catalog.pg_get_constraintdef(r.oid, true) as condef,
                n.nspname as conschema
          FROM  pg_catalog.pg_constraint r,
                pg_namespace n,
                pg_class c

          WHERE r.conrelid = 'public.city'::regclass AND
                r.contype = 'f' AND
                c.oid = confrelid AND
                n.oid = c.relnamespace
          ORDER BY 1
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_indexes)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_indexes(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
              SELECT
                  i.relname as relname,
                  ix.indisunique, ix.indexprs,
                  a.attname, a.attnum, c.conrelid, ix.indkey::varchar,
                  ix.indoption::varchar, i.reloptions, am.amname,
                  pg_get_expr(ix.indpred, ix.indrelid),
                  ix.indnkeyatts as indnkeyatts
              FROM
                  pg_class t
                        join pg_index ix on t.oid = ix.indrelid
                        join pg_class i on i.oid = ix.indexrelid
                        left outer join
                            pg_attribute a
                            on t.oid = a.attrelid and a.attnum = ANY(ix.indkey)
                        left outer join
                            pg_constraint c
                            on (ix.indrelid = c.conrelid and
                                ix.indexrelid = c.conindid and
                                c.contype in ('p', 'u', 'x'))
                        left outer join
                            pg_am am
                            on i.relam = am.oid
              WHERE
                  t.relkind IN ('r', 'v', 'f', 'm', 'p')
                  and t.oid = 'public.city'::regclass
                  and ix.indisprimary = 'f'
              ORDER BY
                  t.relname,
                  i.relname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_indexes)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_indexes(measurement)
-- tag: SELECT 1
-- rows: 1
            SELECT c.oid
            FROM pg_catalog.pg_class c
            LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'public')
            AND c.relname = 'measurement' AND c.relkind in
            ('r', 'v', 'm', 'f', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_indexes)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_indexes(measurement)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 2
-- rows: 2
              SELECT
                  i.relname as relname,
                  ix.indisunique, ix.indexprs,
                  a.attname, a.attnum, c.conrelid, ix.indkey::varchar,
                  ix.indoption::varchar, i.reloptions, am.amname,
                  pg_get_expr(ix.indpred, ix.indrelid),
                  ix.indnkeyatts as indnkeyatts
              FROM
                  pg_class t
                        join pg_index ix on t.oid = ix.indrelid
                        join pg_class i on i.oid = ix.indexrelid
                        left outer join
                            pg_attribute a
                            on t.oid = a.attrelid and a.attnum = ANY(ix.indkey)
                        left outer join
                            pg_constraint c
                            on (ix.indrelid = c.conrelid and
                                ix.indexrelid = c.conindid and
                                c.contype in ('p', 'u', 'x'))
                        left outer join
                            pg_am am
                            on i.relam = am.oid
              WHERE
                  t.relkind IN ('r', 'v', 'f', 'm', 'p')
                  and t.oid = 'public.measurement'::regclass
                  and ix.indisprimary = 'f'
              ORDER BY
                  t.relname,
                  i.relname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_unique_constraints)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_unique_constraints(measurement)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 2
-- rows: 2
            SELECT
                cons.conname as name,
                cons.conkey as key,
                a.attnum as col_num,
                a.attname as col_name
            FROM
                pg_catalog.pg_constraint cons
                join pg_attribute a
                  on cons.conrelid = a.attrelid AND
                    a.attnum = ANY(cons.conkey)
            WHERE
                cons.conrelid = 'public.measurement'::regclass AND
                cons.contype = 'u'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_check_constraints)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_check_constraints(sales.orders)
-- tag: SELECT 1
-- rows: 1
            SELECT c.oid
            FROM pg_catalog.pg_class c
            LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'sales')
            AND c.relname = 'orders' AND c.relkind in
            ('r', 'v', 'm', 'f', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_check_constraints)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_check_constraints(sales.orders)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
            SELECT
                cons.conname as name,
                pg_get_constraintdef(cons.oid) as src
            FROM
                pg_catalog.pg_constraint cons
            WHERE
                cons.conrelid = 'sales.orders'::regclass AND
                cons.contype = 'c'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_foreign_keys)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_foreign_keys(measurement)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
          SELECT r.conname,
                pg_catalog.pg_get_constraintdef(r.oid, true) as condef,
                n.nspname as conschema
          FROM  pg_catalog.pg_constraint r,
                pg_namespace n,
                pg_class c

          WHERE r.conrelid = 'public.measurement'::regclass AND
                r.contype = 'f' AND
                c.oid = confrelid AND
                n.oid = c.relnamespace
          ORDER BY 1
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_check_constraints)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_check_constraints(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
            SELECT
                cons.conname as name,
                pg_get_constraintdef(cons.oid) as src
            FROM
                pg_catalog.pg_constraint cons
            WHERE
                cons.conrelid = 'public.city'::regclass AND
                cons.contype = 'c'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_table_comment)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_table_comment(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
            SELECT
                pgd.description as table_comment
            FROM
                pg_catalog.pg_description pgd
            WHERE
                pgd.objsubid = 0 AND
                pgd.objoid = 'public.city'::regclass
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(big_city)
-- tag: SELECT 1
-- rows: 1
            SELECT c.oid
            FROM pg_catalog.pg_class c
            LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE (n.nspname = 'public')
            AND c.relname = 'big_city' AND c.relkind in
            ('r', 'v', 'm', 'f', 'p')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 1.4.54) (Inspector.get_columns)
-- purpose: SQLAlchemy 1.4 (pinned by Superset: sqlalchemy>=1.4,<2): inspector.get_columns(big_city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 2
-- rows: 2
            SELECT a.attname,
              pg_catalog.format_type(a.atttypid, a.atttypmod),
              (
                SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)
                FROM pg_catalog.pg_attrdef d
                WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum
                AND a.atthasdef
              ) AS DEFAULT,
              a.attnotnull,
              a.attrelid as table_oid,
              pgd.description as comment,
              a.attgenerated as generated,
                              (SELECT json_build_object(
                    'always', a.attidentity = 'a',
                    'start', s.seqstart,
                    'increment', s.seqincrement,
                    'minvalue', s.seqmin,
                    'maxvalue', s.seqmax,
                    'cache', s.seqcache,
                    'cycle', s.seqcycle)
                FROM pg_catalog.pg_sequence s
                JOIN pg_catalog.pg_class c on s.seqrelid = c."oid"
                WHERE c.relkind = 'S'
                AND a.attidentity != ''
                AND s.seqrelid = pg_catalog.pg_get_serial_sequence(
                    a.attrelid::regclass::text, a.attname
                )::regclass::oid
                ) as identity_options                
            FROM pg_catalog.pg_attribute a
            LEFT JOIN pg_catalog.pg_description pgd ON (
                pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum)
            WHERE a.attrelid = 'public.big_city'::regclass
            AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/psycopg2.py / sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9)
-- purpose: SQLAlchemy 2.x: first connection (dialect initialize)
-- tag: SELECT 0
-- rows: 0
SELECT t.oid, typarray
FROM pg_type t JOIN pg_namespace ns
    ON typnamespace = ns.oid
WHERE typname = 'hstore'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 2.x: first connection (dialect initialize)
-- tag: SELECT 1
-- rows: 1
select pg_catalog.version()
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 2.x: first connection (dialect initialize)
-- tag: SELECT 1
-- rows: 1
select current_schema()
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 2.x: first connection (dialect initialize)
-- tag: SHOW
-- rows: 1
show transaction isolation level
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (PGDialect.initialize / _get_server_version_info / _get_default_schema_name)
-- purpose: SQLAlchemy 2.x: first connection (dialect initialize)
-- tag: SHOW
-- rows: 1
show standard_conforming_strings
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_schema_names)
-- purpose: SQLAlchemy 2.x: inspector.get_schema_names()
-- tag: SELECT 3
-- rows: 3
SELECT pg_catalog.pg_namespace.nspname 
FROM pg_catalog.pg_namespace 
WHERE (pg_catalog.pg_namespace.nspname NOT LIKE 'pg/_' || '%' ESCAPE '/') ORDER BY pg_catalog.pg_namespace.nspname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.has_table)
-- purpose: SQLAlchemy 2.x: inspector.has_table(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relname IN ('city') AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.has_schema)
-- purpose: SQLAlchemy 2.x: inspector.has_schema(sales)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_namespace.nspname 
FROM pg_catalog.pg_namespace 
WHERE pg_catalog.pg_namespace.nspname = 'sales'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_table_names)
-- purpose: SQLAlchemy 2.x: inspector.get_table_names(public)
-- tag: SELECT 2
-- rows: 2
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p']) AND pg_catalog.pg_class.relpersistence != 't' AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_table_names)
-- purpose: SQLAlchemy 2.x: inspector.get_table_names(sales)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p']) AND pg_catalog.pg_class.relpersistence != 't' AND pg_catalog.pg_namespace.nspname = 'sales'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_view_names)
-- purpose: SQLAlchemy 2.x: inspector.get_view_names(public)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['v']) AND pg_catalog.pg_class.relpersistence != 't' AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_materialized_view_names)
-- purpose: SQLAlchemy 2.x: inspector.get_materialized_view_names()
-- tag: SELECT 0
-- rows: 0
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['m']) AND pg_catalog.pg_class.relpersistence != 't' AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_foreign_table_names)
-- purpose: SQLAlchemy 2.x: inspector.get_foreign_table_names()
-- tag: SELECT 0
-- rows: 0
SELECT pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['f']) AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_view_definition)
-- purpose: SQLAlchemy 2.x: inspector.get_view_definition(big_city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_get_viewdef(pg_catalog.pg_class.oid) AS pg_get_viewdef_1 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relname = 'big_city' AND pg_catalog.pg_class.relkind = ANY (ARRAY['v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_columns)
-- purpose: SQLAlchemy 2.x: inspector.get_columns(city)
-- tag: SELECT 7
-- rows: 7
SELECT pg_catalog.pg_attribute.attname AS name, pg_catalog.format_type(pg_catalog.pg_attribute.atttypid, pg_catalog.pg_attribute.atttypmod) AS format_type, CASE WHEN pg_catalog.pg_attribute.atthasdef THEN (SELECT pg_catalog.pg_get_expr(pg_catalog.pg_attrdef.adbin, pg_catalog.pg_attrdef.adrelid) AS pg_get_expr_1 
FROM pg_catalog.pg_attrdef 
WHERE pg_catalog.pg_attribute.atthasdef AND pg_catalog.pg_attrdef.adrelid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_attrdef.adnum = pg_catalog.pg_attribute.attnum) ELSE NULL END AS "default", pg_catalog.pg_attribute.attnotnull AS not_null, pg_catalog.pg_class.relname AS table_name, pg_catalog.pg_description.description AS comment, pg_catalog.pg_attribute.attgenerated AS generated, CASE WHEN (pg_catalog.pg_attribute.attidentity != '') THEN (SELECT json_build_object('always', pg_catalog.pg_attribute.attidentity = 'a', 'start', pg_catalog.pg_sequence.seqstart, 'increment', pg_catalog.pg_sequence.seqincrement, 'minvalue', pg_catalog.pg_sequence.seqmin, 'maxvalue', pg_catalog.pg_sequence.seqmax, 'cache', pg_catalog.pg_sequence.seqcache, 'cycle', pg_catalog.pg_sequence.seqcycle) AS json_build_object_1 
FROM pg_catalog.pg_sequence 
WHERE pg_catalog.pg_attribute.attidentity != '' AND pg_catalog.pg_sequence.seqrelid = CAST(CAST(pg_catalog.pg_get_serial_sequence(CAST(CAST(pg_catalog.pg_attribute.attrelid AS REGCLASS) AS TEXT), pg_catalog.pg_attribute.attname) AS REGCLASS) AS OID)) ELSE NULL END AS identity_options, CASE WHEN (pg_catalog.pg_attribute.attcollation != 0 AND (SELECT pg_catalog.pg_type.typcollation 
FROM pg_catalog.pg_type 
WHERE pg_catalog.pg_type.oid = pg_catalog.pg_attribute.atttypid) != pg_catalog.pg_attribute.attcollation) THEN (SELECT json_build_object('name', pg_catalog.pg_collation.collname, 'schema', CASE WHEN pg_catalog.pg_collation_is_visible(pg_catalog.pg_collation.oid) THEN NULL ELSE pg_catalog.pg_namespace.nspname END) AS json_build_object_9 
FROM pg_catalog.pg_collation JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_collation.collnamespace 
WHERE pg_catalog.pg_collation.oid = pg_catalog.pg_attribute.attcollation) ELSE NULL END AS collation 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_attribute ON pg_catalog.pg_class.oid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_attribute.attnum > 0 AND NOT pg_catalog.pg_attribute.attisdropped LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_description.objsubid = pg_catalog.pg_attribute.attnum JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('city') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_attribute.attnum
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_pk_constraint)
-- purpose: SQLAlchemy 2.x: inspector.get_pk_constraint(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.oid, pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('city')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_pk_constraint)
-- purpose: SQLAlchemy 2.x: inspector.get_pk_constraint(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
SELECT attr.conrelid, array_agg(CAST(attr.attname AS TEXT) ORDER BY attr.ord) AS cols, attr.conname, min(attr.description) AS description, min(attr.indnkeyatts) AS indnkeyatts, bool_and(attr.indnullsnotdistinct) AS indnullsnotdistinct 
FROM (SELECT con.conrelid AS conrelid, con.conname AS conname, con.description AS description, con.ord AS ord, con.indnkeyatts AS indnkeyatts, con.indnullsnotdistinct AS indnullsnotdistinct, pg_catalog.pg_attribute.attname AS attname 
FROM pg_catalog.pg_attribute JOIN (SELECT pg_catalog.pg_constraint.conrelid AS conrelid, pg_catalog.pg_constraint.conname AS conname, unnest(pg_catalog.pg_index.indkey) AS attnum, generate_subscripts(pg_catalog.pg_index.indkey, 1) AS ord, pg_catalog.pg_index.indnkeyatts AS indnkeyatts, pg_catalog.pg_index.indnullsnotdistinct AS indnullsnotdistinct, pg_catalog.pg_description.description AS description 
FROM pg_catalog.pg_constraint JOIN pg_catalog.pg_index ON pg_catalog.pg_constraint.conindid = pg_catalog.pg_index.indexrelid LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) 
WHERE pg_catalog.pg_constraint.contype = 'p' AND pg_catalog.pg_constraint.conrelid IN ('public.city'::regclass)) AS con ON pg_catalog.pg_attribute.attnum = con.attnum AND pg_catalog.pg_attribute.attrelid = con.conrelid 
WHERE con.conrelid IN ('public.city'::regclass)) AS attr GROUP BY attr.conrelid, attr.conname ORDER BY attr.conrelid, attr.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_foreign_keys)
-- purpose: SQLAlchemy 2.x: inspector.get_foreign_keys(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname, CASE WHEN (pg_catalog.pg_constraint.oid IS NOT NULL) THEN pg_catalog.pg_get_constraintdef(pg_catalog.pg_constraint.oid, true) END AS anon_1, nsp_ref.nspname, pg_catalog.pg_description.description 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_class.oid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_constraint.contype = 'f' LEFT OUTER JOIN pg_catalog.pg_class AS cls_ref ON cls_ref.oid = pg_catalog.pg_constraint.confrelid LEFT OUTER JOIN pg_catalog.pg_namespace AS nsp_ref ON cls_ref.relnamespace = nsp_ref.oid LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('city') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_indexes)
-- purpose: SQLAlchemy 2.x: inspector.get_indexes(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_am.oid, pg_catalog.pg_am.amname 
FROM pg_catalog.pg_am 
WHERE pg_catalog.pg_am.amname = 'btree'
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_indexes)
-- purpose: SQLAlchemy 2.x: inspector.get_indexes(city)
-- tag: SELECT 58
-- rows: 58
SELECT pg_catalog.pg_opclass.oid, pg_catalog.pg_opclass.opcname 
FROM pg_catalog.pg_opclass 
WHERE NOT pg_catalog.pg_opclass.opcdefault
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_indexes)
-- purpose: SQLAlchemy 2.x: inspector.get_indexes(city)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 0
-- rows: 0
SELECT pg_catalog.pg_index.indrelid, pg_catalog.pg_class.relname, pg_catalog.pg_index.indisunique, pg_catalog.pg_index.indisvalid, pg_catalog.pg_constraint.conrelid IS NOT NULL AS has_constraint, pg_catalog.pg_index.indoption, pg_catalog.pg_class.reloptions, pg_catalog.pg_class.relam, CASE WHEN (pg_catalog.pg_index.indpred IS NOT NULL) THEN pg_catalog.pg_get_expr(pg_catalog.pg_index.indpred, pg_catalog.pg_index.indrelid) END AS filter_definition, pg_catalog.pg_index.indnkeyatts, pg_catalog.pg_index.indnullsnotdistinct, idx_cols.elements, idx_cols.elements_is_expr, idx_cols.elements_opclass 
FROM pg_catalog.pg_index JOIN pg_catalog.pg_class ON pg_catalog.pg_index.indexrelid = pg_catalog.pg_class.oid LEFT OUTER JOIN (SELECT idx_attr.indexrelid AS indexrelid, min(idx_attr.indrelid) AS min_1, array_agg(idx_attr.element ORDER BY idx_attr.ord) AS elements, array_agg(idx_attr.is_expr ORDER BY idx_attr.ord) AS elements_is_expr, array_agg(idx_attr.att_opclass ORDER BY idx_attr.ord) AS elements_opclass 
FROM (SELECT idx.indexrelid AS indexrelid, idx.indrelid AS indrelid, idx.ord AS ord, CASE WHEN (idx.attnum = 0) THEN pg_catalog.pg_get_indexdef(idx.indexrelid, idx.ord + 1, true) ELSE CAST(pg_catalog.pg_attribute.attname AS TEXT) END AS element, idx.attnum = 0 AS is_expr, CAST(idx.att_opclass AS BIGINT) AS att_opclass 
FROM (SELECT pg_catalog.pg_index.indexrelid AS indexrelid, pg_catalog.pg_index.indrelid AS indrelid, unnest(pg_catalog.pg_index.indkey) AS attnum, unnest(pg_catalog.pg_index.indclass) AS att_opclass, generate_subscripts(pg_catalog.pg_index.indkey, 1) AS ord 
FROM pg_catalog.pg_index 
WHERE NOT pg_catalog.pg_index.indisprimary AND pg_catalog.pg_index.indrelid IN ('public.city'::regclass)) AS idx LEFT OUTER JOIN pg_catalog.pg_attribute ON pg_catalog.pg_attribute.attnum = idx.attnum AND pg_catalog.pg_attribute.attrelid = idx.indrelid 
WHERE idx.indrelid IN ('public.city'::regclass)) AS idx_attr GROUP BY idx_attr.indexrelid) AS idx_cols ON pg_catalog.pg_index.indexrelid = idx_cols.indexrelid LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_index.indrelid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_index.indexrelid = pg_catalog.pg_constraint.conindid AND pg_catalog.pg_constraint.contype = ANY (ARRAY['p', 'u', 'x']) 
WHERE pg_catalog.pg_index.indrelid IN ('public.city'::regclass) AND NOT pg_catalog.pg_index.indisprimary ORDER BY pg_catalog.pg_index.indrelid, pg_catalog.pg_class.relname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_indexes)
-- purpose: SQLAlchemy 2.x: inspector.get_indexes(measurement)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.oid, pg_catalog.pg_class.relname 
FROM pg_catalog.pg_class JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('measurement')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_indexes)
-- purpose: SQLAlchemy 2.x: inspector.get_indexes(measurement)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_index.indrelid, pg_catalog.pg_class.relname, pg_catalog.pg_index.indisunique, pg_catalog.pg_index.indisvalid, pg_catalog.pg_constraint.conrelid IS NOT NULL AS has_constraint, pg_catalog.pg_index.indoption, pg_catalog.pg_class.reloptions, pg_catalog.pg_class.relam, CASE WHEN (pg_catalog.pg_index.indpred IS NOT NULL) THEN pg_catalog.pg_get_expr(pg_catalog.pg_index.indpred, pg_catalog.pg_index.indrelid) END AS filter_definition, pg_catalog.pg_index.indnkeyatts, pg_catalog.pg_index.indnullsnotdistinct, idx_cols.elements, idx_cols.elements_is_expr, idx_cols.elements_opclass 
FROM pg_catalog.pg_index JOIN pg_catalog.pg_class ON pg_catalog.pg_index.indexrelid = pg_catalog.pg_class.oid LEFT OUTER JOIN (SELECT idx_attr.indexrelid AS indexrelid, min(idx_attr.indrelid) AS min_1, array_agg(idx_attr.element ORDER BY idx_attr.ord) AS elements, array_agg(idx_attr.is_expr ORDER BY idx_attr.ord) AS elements_is_expr, array_agg(idx_attr.att_opclass ORDER BY idx_attr.ord) AS elements_opclass 
FROM (SELECT idx.indexrelid AS indexrelid, idx.indrelid AS indrelid, idx.ord AS ord, CASE WHEN (idx.attnum = 0) THEN pg_catalog.pg_get_indexdef(idx.indexrelid, idx.ord + 1, true) ELSE CAST(pg_catalog.pg_attribute.attname AS TEXT) END AS element, idx.attnum = 0 AS is_expr, CAST(idx.att_opclass AS BIGINT) AS att_opclass 
FROM (SELECT pg_catalog.pg_index.indexrelid AS indexrelid, pg_catalog.pg_index.indrelid AS indrelid, unnest(pg_catalog.pg_index.indkey) AS attnum, unnest(pg_catalog.pg_index.indclass) AS att_opclass, generate_subscripts(pg_catalog.pg_index.indkey, 1) AS ord 
FROM pg_catalog.pg_index 
WHERE NOT pg_catalog.pg_index.indisprimary AND pg_catalog.pg_index.indrelid IN ('public.measurement'::regclass)) AS idx LEFT OUTER JOIN pg_catalog.pg_attribute ON pg_catalog.pg_attribute.attnum = idx.attnum AND pg_catalog.pg_attribute.attrelid = idx.indrelid 
WHERE idx.indrelid IN ('public.measurement'::regclass)) AS idx_attr GROUP BY idx_attr.indexrelid) AS idx_cols ON pg_catalog.pg_index.indexrelid = idx_cols.indexrelid LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_index.indrelid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_index.indexrelid = pg_catalog.pg_constraint.conindid AND pg_catalog.pg_constraint.contype = ANY (ARRAY['p', 'u', 'x']) 
WHERE pg_catalog.pg_index.indrelid IN ('public.measurement'::regclass) AND NOT pg_catalog.pg_index.indisprimary ORDER BY pg_catalog.pg_index.indrelid, pg_catalog.pg_class.relname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_unique_constraints)
-- purpose: SQLAlchemy 2.x: inspector.get_unique_constraints(measurement)
-- note: the client first looks up the table oid and then inlines it as a number; written as ::regclass here
-- tag: SELECT 1
-- rows: 1
SELECT attr.conrelid, array_agg(CAST(attr.attname AS TEXT) ORDER BY attr.ord) AS cols, attr.conname, min(attr.description) AS description, min(attr.indnkeyatts) AS indnkeyatts, bool_and(attr.indnullsnotdistinct) AS indnullsnotdistinct 
FROM (SELECT con.conrelid AS conrelid, con.conname AS conname, con.description AS description, con.ord AS ord, con.indnkeyatts AS indnkeyatts, con.indnullsnotdistinct AS indnullsnotdistinct, pg_catalog.pg_attribute.attname AS attname 
FROM pg_catalog.pg_attribute JOIN (SELECT pg_catalog.pg_constraint.conrelid AS conrelid, pg_catalog.pg_constraint.conname AS conname, unnest(pg_catalog.pg_index.indkey) AS attnum, generate_subscripts(pg_catalog.pg_index.indkey, 1) AS ord, pg_catalog.pg_index.indnkeyatts AS indnkeyatts, pg_catalog.pg_index.indnullsnotdistinct AS indnullsnotdistinct, pg_catalog.pg_description.description AS description 
FROM pg_catalog.pg_constraint JOIN pg_catalog.pg_index ON pg_catalog.pg_constraint.conindid = pg_catalog.pg_index.indexrelid LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) 
WHERE pg_catalog.pg_constraint.contype = 'u' AND pg_catalog.pg_constraint.conrelid IN ('public.measurement'::regclass)) AS con ON pg_catalog.pg_attribute.attnum = con.attnum AND pg_catalog.pg_attribute.attrelid = con.conrelid 
WHERE con.conrelid IN ('public.measurement'::regclass)) AS attr GROUP BY attr.conrelid, attr.conname ORDER BY attr.conrelid, attr.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_check_constraints)
-- purpose: SQLAlchemy 2.x: inspector.get_check_constraints(sales.orders)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname, CASE WHEN (pg_catalog.pg_constraint.oid IS NOT NULL) THEN pg_catalog.pg_get_constraintdef(pg_catalog.pg_constraint.oid, true) END AS anon_1, pg_catalog.pg_description.description 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_class.oid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_constraint.contype = 'c' LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'sales' AND pg_catalog.pg_class.relname IN ('orders') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_foreign_keys)
-- purpose: SQLAlchemy 2.x: inspector.get_foreign_keys(measurement)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname, CASE WHEN (pg_catalog.pg_constraint.oid IS NOT NULL) THEN pg_catalog.pg_get_constraintdef(pg_catalog.pg_constraint.oid, true) END AS anon_1, nsp_ref.nspname, pg_catalog.pg_description.description 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_class.oid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_constraint.contype = 'f' LEFT OUTER JOIN pg_catalog.pg_class AS cls_ref ON cls_ref.oid = pg_catalog.pg_constraint.confrelid LEFT OUTER JOIN pg_catalog.pg_namespace AS nsp_ref ON cls_ref.relnamespace = nsp_ref.oid LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('measurement') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_check_constraints)
-- purpose: SQLAlchemy 2.x: inspector.get_check_constraints(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname, CASE WHEN (pg_catalog.pg_constraint.oid IS NOT NULL) THEN pg_catalog.pg_get_constraintdef(pg_catalog.pg_constraint.oid, true) END AS anon_1, pg_catalog.pg_description.description 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_constraint ON pg_catalog.pg_class.oid = pg_catalog.pg_constraint.conrelid AND pg_catalog.pg_constraint.contype = 'c' LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_constraint.oid AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_constraint' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('city') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_constraint.conname
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_table_comment)
-- purpose: SQLAlchemy 2.x: inspector.get_table_comment(city)
-- tag: SELECT 1
-- rows: 1
SELECT pg_catalog.pg_class.relname, pg_catalog.pg_description.description 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_class.oid = pg_catalog.pg_description.objoid AND pg_catalog.pg_description.objsubid = 0 AND pg_catalog.pg_description.classoid = CAST('pg_catalog.pg_class' AS REGCLASS) JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('city')
-- next
-- source: sqlalchemy/sqlalchemy/lib/sqlalchemy/dialects/postgresql/base.py (SQLAlchemy 2.1.9) (Inspector.get_columns)
-- purpose: SQLAlchemy 2.x: inspector.get_columns(big_city)
-- tag: SELECT 2
-- rows: 2
SELECT pg_catalog.pg_attribute.attname AS name, pg_catalog.format_type(pg_catalog.pg_attribute.atttypid, pg_catalog.pg_attribute.atttypmod) AS format_type, CASE WHEN pg_catalog.pg_attribute.atthasdef THEN (SELECT pg_catalog.pg_get_expr(pg_catalog.pg_attrdef.adbin, pg_catalog.pg_attrdef.adrelid) AS pg_get_expr_1 
FROM pg_catalog.pg_attrdef 
WHERE pg_catalog.pg_attribute.atthasdef AND pg_catalog.pg_attrdef.adrelid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_attrdef.adnum = pg_catalog.pg_attribute.attnum) ELSE NULL END AS "default", pg_catalog.pg_attribute.attnotnull AS not_null, pg_catalog.pg_class.relname AS table_name, pg_catalog.pg_description.description AS comment, pg_catalog.pg_attribute.attgenerated AS generated, CASE WHEN (pg_catalog.pg_attribute.attidentity != '') THEN (SELECT json_build_object('always', pg_catalog.pg_attribute.attidentity = 'a', 'start', pg_catalog.pg_sequence.seqstart, 'increment', pg_catalog.pg_sequence.seqincrement, 'minvalue', pg_catalog.pg_sequence.seqmin, 'maxvalue', pg_catalog.pg_sequence.seqmax, 'cache', pg_catalog.pg_sequence.seqcache, 'cycle', pg_catalog.pg_sequence.seqcycle) AS json_build_object_1 
FROM pg_catalog.pg_sequence 
WHERE pg_catalog.pg_attribute.attidentity != '' AND pg_catalog.pg_sequence.seqrelid = CAST(CAST(pg_catalog.pg_get_serial_sequence(CAST(CAST(pg_catalog.pg_attribute.attrelid AS REGCLASS) AS TEXT), pg_catalog.pg_attribute.attname) AS REGCLASS) AS OID)) ELSE NULL END AS identity_options, CASE WHEN (pg_catalog.pg_attribute.attcollation != 0 AND (SELECT pg_catalog.pg_type.typcollation 
FROM pg_catalog.pg_type 
WHERE pg_catalog.pg_type.oid = pg_catalog.pg_attribute.atttypid) != pg_catalog.pg_attribute.attcollation) THEN (SELECT json_build_object('name', pg_catalog.pg_collation.collname, 'schema', CASE WHEN pg_catalog.pg_collation_is_visible(pg_catalog.pg_collation.oid) THEN NULL ELSE pg_catalog.pg_namespace.nspname END) AS json_build_object_9 
FROM pg_catalog.pg_collation JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_collation.collnamespace 
WHERE pg_catalog.pg_collation.oid = pg_catalog.pg_attribute.attcollation) ELSE NULL END AS collation 
FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_attribute ON pg_catalog.pg_class.oid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_attribute.attnum > 0 AND NOT pg_catalog.pg_attribute.attisdropped LEFT OUTER JOIN pg_catalog.pg_description ON pg_catalog.pg_description.objoid = pg_catalog.pg_attribute.attrelid AND pg_catalog.pg_description.objsubid = pg_catalog.pg_attribute.attnum JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace 
WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) AND pg_catalog.pg_namespace.nspname = 'public' AND pg_catalog.pg_class.relname IN ('big_city') ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_attribute.attnum
