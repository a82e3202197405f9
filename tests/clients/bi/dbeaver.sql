-- DBeaver — SQL sent to PostgreSQL when connecting and browsing schemas/tables
-- Format: statements separated by a line containing only "-- next". Each statement is preceded by
-- metadata comment lines "-- source:", "-- purpose:", optional "-- note:", "-- tag:" (command tag)
-- and "-- rows:" (rows returned on PostgreSQL 15.18 with tests/psql/catalog.sql loaded, user postgres).
-- Everything after the metadata lines is sent verbatim (some clients really send leading comments).
-- Statements carry no trailing semicolon. Bind parameters were replaced by literals for schema
-- 'public' / table 'city'; oid parameters are written as 'public.city'::regclass (or ::regnamespace)
-- so they resolve on any server.
-- DBeaver (Community) PostgreSQL plugin, as of dbeaver/dbeaver commit 2428359b (2024-10-24): queries run when a
-- connection opens, the navigator expands schema public -> table city (columns, constraints, indexes) and the
-- table/view editors open. DBeaver uses pgjdbc (extended protocol); its own ? parameters are bound as int8
-- (setLong, oids) or varchar (setString); here they are inlined, oids as 'public.city'::regclass::oid.
-- DBeaver reads result columns by name and tolerates missing ones, so for "x.*" selects the "note: columns read"
-- lines list the columns DBeaver actually uses.

-- source: pgjdbc/pgjdbc/pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java (setClientInfo) from dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (ApplicationName client info)
-- purpose: every DBeaver connection (main, metadata, SQL editor) sets its application name
-- tag: SET
-- rows: 0
SET application_name = 'DBeaver 24.2.3 - Main <quiver>'
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (readDatabaseInfo)
-- purpose: connect: read the connected database row ($1 = quiver)
-- note: columns read: oid datname datdba encoding datcollate datctype datistemplate datallowconn datconnlimit dattablespace
-- tag: SELECT 1
-- rows: 1
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='quiver'
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (initialize)
-- purpose: connect: server version string (DBeaver parses "PostgreSQL x.y")
-- tag: SELECT 1
-- rows: 1
SELECT version()
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (initialize) + dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/PostgreUtils.java (isMetaObjectExists)
-- purpose: connect: does pg_enum exist (server >= 12)
-- tag: SELECT 0
-- rows: 0
SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (initialize) + dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/PostgreUtils.java (isMetaObjectExists)
-- purpose: connect: does pg_class.reltype exist
-- tag: SELECT 0
-- rows: 0
SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (cacheDataTypes) + PostgreDataTypeCache.java (getBaseTypeNameClause)
-- purpose: connect: load all non-composite data types
-- note: pg_type columns read: oid typname typnamespace typowner typlen typbyval typtype typcategory typispreferred typdelim typrelid typelem typarray typinput typoutput typreceive typsend typmodin typmodout typanalyze typalign typstorage typnotnull typbasetype typtypmod typndims typcollation typdefault
-- tag: SELECT 195
-- rows: 195
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (EnumValueCache)
-- purpose: connect: enum labels
-- tag: SELECT 0
-- rows: 0
SELECT * FROM pg_catalog.pg_enum
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java (refreshDefaults)
-- purpose: connect: default schema and user of the session
-- tag: SELECT 1
-- rows: 1
SELECT current_schema(),session_user
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (SchemaCache)
-- purpose: navigator: list schemas
-- note: columns read: oid nspname nspowner nspacl description
-- tag: SELECT 5
-- rows: 5
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java (refreshDefaults)
-- purpose: connect: search path
-- tag: SHOW
-- rows: 1
SHOW search_path
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (SettingCache)
-- purpose: connect: preload standard_conforming_strings ($1 inlined)
-- note: columns read: name setting unit short_desc
-- tag: SELECT 1
-- rows: 1
select * from pg_catalog.pg_settings where name='standard_conforming_strings'
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java (setSearchPath)
-- purpose: SQL editor: make the selected schema the default (quoted identifiers, "$user" kept)
-- tag: SET
-- rows: 0
SET search_path = public,"$user"
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (RoleCache)
-- purpose: navigator/properties: roles (owner names)
-- note: columns read: oid rolname rolsuper rolinherit rolcreaterole rolcreatedb rolcanlogin rolreplication rolbypassrls rolconnlimit rolpassword rolvaliduntil
-- tag: SELECT 13
-- rows: 13
SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a 
left join pg_catalog.pg_shdescription pd on a.oid = pd.objoid
ORDER BY a.rolname
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (AccessMethodCache)
-- purpose: properties: access methods (table/index "Access method")
-- note: columns read: oid amname amhandler amtype
-- tag: SELECT 7
-- rows: 7
SELECT am.oid,am.* FROM pg_catalog.pg_am am 
ORDER BY am.oid
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareLookupStatement)
-- purpose: navigator: tables/views/sequences of schema public ($1 = namespace oid)
-- note: columns read: oid relname relkind relowner relacl reloptions relpersistence relispartition relhasoids relhassubclass relrowsecurity reltablespace relnamespace reltuples description partition_expr partition_key
-- tag: SELECT 3
-- rows: 3
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace='public'::regnamespace::oid AND c.relkind not in ('i','I','c')
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareChildrenStatement)
-- purpose: navigator: columns of table city ($1 = table oid)
-- note: columns read: attname attnum atttypid atttypmod attnotnull attndims attcollation attidentity attgenerated attislocal attinhcount attacl attfdwoptions def_value description objid
-- tag: SELECT 13
-- rows: 13
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid='public.city'::regclass::oid
ORDER BY a.attnum
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (TableCache.prepareChildrenStatement, whole schema)
-- purpose: navigator: columns of every table in the schema at once ($1 = namespace oid)
-- tag: SELECT 25
-- rows: 25
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.relnamespace='public'::regnamespace::oid
ORDER BY a.attnum
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (ConstraintCache)
-- purpose: navigator: constraints (p/u/f/c) of table city ($1 = table oid)
-- note: columns read: oid conname contype conkey confkey confrelid confupdtype confdeltype confmatchtype condeferrable condeferred conindid conislocal tabrelname refnamespace description consrc_copy
-- tag: SELECT 1
-- rows: 1
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE c.conrelid='public.city'::regclass::oid
ORDER BY c.oid
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (ConstraintCache, whole schema)
-- purpose: navigator: constraints of every table of sales (shows the CHECK constraint)
-- tag: SELECT 2
-- rows: 2
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace='sales'::regnamespace::oid
ORDER BY c.oid
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (IndexCache)
-- purpose: navigator: indexes of table measurement ($1 = table oid)
-- note: columns read: indexrelid indisunique indisprimary indisexclusion indimmediate indisclustered indisvalid indcheckxmin indisready indkey(keys) indclass indoption relname relam reltablespace tabrelname description pred_expr expr index_rel_size index_num_scans
-- tag: SELECT 1
-- rows: 1
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  i.indrelid='public.measurement'::regclass::oid ORDER BY c.relname
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (IndexCache), column expression
-- purpose: index column text for expression/plain columns ($1 = index oid, $2 = column number)
-- tag: SELECT 1
-- rows: 1
select pg_catalog.pg_get_indexdef('public.measurement_city_id_at_key'::regclass::oid, 1, true)
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTable.java (initSuperTables)
-- purpose: table properties: parent tables (inheritance) of city
-- tag: SELECT 0
-- rows: 0
SELECT i.*,c.relnamespace FROM pg_catalog.pg_inherits i,pg_catalog.pg_class c WHERE i.inhrelid='public.city'::regclass::oid AND c.oid=i.inhparent ORDER BY i.inhseqno
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (loadInheritance)
-- purpose: navigator: inheritance inside the schema
-- tag: SELECT 0
-- rows: 0
SELECT i.inhrelid relid, pc.relnamespace parent_ns, pc.oid parent_oid, i.inhseqno
FROM pg_catalog.pg_inherits i, pg_class rc, pg_class pc
WHERE rc.oid=i.inhrelid AND rc.relnamespace='public'::regnamespace::oid AND pc.oid=i.inhparent
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTable.java (getReferences)
-- purpose: table properties: schemas holding foreign keys that reference city
-- tag: SELECT 0
-- rows: 0
SELECT DISTINCT connamespace FROM pg_catalog.pg_constraint WHERE confrelid='public.city'::regclass::oid
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTableReal.java (readTableStatistics)
-- purpose: table properties: disk size of city
-- tag: SELECT 1
-- rows: 1
select pg_catalog.pg_total_relation_size('public.city'::regclass::oid) as total_rel_size,pg_catalog.pg_relation_size('public.city'::regclass::oid) as rel_size
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java (collectObjectStatistics)
-- purpose: schema properties: sizes of all relations
-- tag: SELECT 5
-- rows: 5
select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as rel_size
FROM pg_class c
WHERE c.relnamespace='public'::regnamespace::oid
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTableReal.java (TriggerCache)
-- purpose: table editor "Triggers" tab
-- tag: SELECT 0
-- rows: 0
SELECT x.oid,x.*,p.pronamespace as func_schema_id,d.description
FROM pg_catalog.pg_trigger x
LEFT OUTER JOIN pg_catalog.pg_proc p ON p.oid=x.tgfoid 
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=x.oid AND d.objsubid=0 
WHERE x.tgrelid = 'public.city'::regclass::oid AND NOT x.tgisinternal
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTableReal.java (RuleCache)
-- purpose: table editor "Rules" tab (DBeaver concatenates the table oid into the text)
-- tag: SELECT 0
-- rows: 0
SELECT r.oid,r.*, pg_get_ruledef(r.oid) AS definition
FROM pg_rewrite r
WHERE r.ev_class='public.city'::regclass::oid AND r.rulename <> '_RETURN'::name
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreViewBase.java (fetchViewQueryResultIfItNull)
-- purpose: view editor: definition of big_city (oid concatenated into the text)
-- tag: SELECT 1
-- rows: 1
SELECT pg_get_viewdef('public.big_city'::regclass::oid, true)
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java (getDescription)
-- purpose: database properties: comment ($1 inlined)
-- tag: SELECT 0
-- rows: 0
select description from pg_shdescription join pg_database on objoid = pg_database.oid where datname = 'quiver'
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java (collectObjectStatistics)
-- purpose: database properties: database size ($1 = database oid)
-- tag: SELECT 1
-- rows: 1
SELECT db.datname,pg_database_size(db.oid) FROM pg_catalog.pg_database db WHERE db.oid=(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
-- next
-- source: dbeaver/dbeaver/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreTable.java (policies)
-- purpose: table editor "Policies" tab ($1, $2 inlined)
-- tag: SELECT 0
-- rows: 0
select * from pg_catalog.pg_policies where schemaname='public' and tablename='city'
-- next
-- source: dbeaver/dbeaver data editor (SQLQueryJob / JDBC Statement.setMaxRows(200))
-- purpose: open the data tab of city: plain SELECT, row limit via Execute max rows; pgjdbc then runs its fetchFieldMetaData query (see pgjdbc.sql)
-- tag: SELECT 3
-- rows: 3
SELECT * FROM public.city
