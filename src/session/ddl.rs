//! CREATE TABLE / CREATE TABLE AS / CREATE VIEW: turning definitions into
//! catalog entries. The same builders recreate tables and views from their
//! logged definitions during recovery.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    ColumnOption, CreateTable, CreateView, ForeignKeyConstraint, GeneratedAs, Query, Statement,
    TableConstraint,
};

use super::{normalize_ident, object_name_parts, Session, StatementResult};
use crate::engine::commit::{CheckDef, ConstraintDef, TableDef, ViewDef};
use crate::engine::sequence::SequenceType;
use crate::engine::table::Check;
use crate::engine::types::column_field;
use crate::engine::unique::UniqueConstraint;
use crate::engine::{QualifiedName, Table, View};
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::sequence_ddl::{self, SeqOption};
use datafusion::sql::sqlparser::ast::{SchemaName, Truncate};
use datafusion::sql::sqlparser::parser::Parser;

impl Session {
    pub(super) async fn create_table(&mut self, create: &CreateTable) -> Result<StatementResult> {
        if create.external {
            return Err(not_supported("CREATE EXTERNAL TABLE"));
        }
        if !create.temporary && create.on_commit.is_some() {
            return Err(QuiverError::InvalidTableDefinition(
                "ON COMMIT can only be used on temporary tables".into(),
            ));
        }
        let name = self
            .new_relation_name(&create.name, create.temporary)
            .await?;
        let result = match &create.query {
            Some(query) => self.create_table_as(create, name.clone(), query).await?,
            None => self.create_table_with_columns(create, name.clone()).await?,
        };
        self.on_commit(&name, create.on_commit.as_ref()).await?;
        Ok(result)
    }

    async fn create_table_with_columns(
        &mut self,
        create: &CreateTable,
        name: QualifiedName,
    ) -> Result<StatementResult> {
        let mut fields = Vec::with_capacity(create.columns.len());
        let mut defaults_sql = Vec::new();
        let mut seen = HashSet::new();
        let mut not_null: HashSet<String> = HashSet::new();
        // (constraint name if given, key column names, primary)
        let mut keys: Vec<(Option<String>, Vec<String>, bool)> = Vec::new();
        // (constraint name if given, the column it is declared on, SQL)
        let mut checks: Vec<(Option<String>, Option<String>, String)> = Vec::new();
        // (the referencing columns, the clause)
        let mut references: Vec<(Vec<String>, ForeignKeyConstraint)> = Vec::new();
        for constraint in &create.constraints {
            let (name, columns, primary) = match constraint {
                TableConstraint::PrimaryKey(pk) => (&pk.name, &pk.columns, true),
                TableConstraint::Unique(u) => (&u.name, &u.columns, false),
                TableConstraint::Check(check) => {
                    checks.push((
                        check.name.as_ref().map(normalize_ident),
                        None,
                        check.expr.to_string(),
                    ));
                    continue;
                }
                TableConstraint::ForeignKey(fk) => {
                    let columns = fk.columns.iter().map(normalize_ident).collect();
                    references.push((columns, fk.clone()));
                    continue;
                }
                other => {
                    return Err(QuiverError::FeatureNotSupported(format!(
                        "table constraint \"{other}\" is not supported yet"
                    )))
                }
            };
            let columns = columns
                .iter()
                .map(|c| col_ident(&c.column.expr).map(|i| normalize_ident(&i)))
                .collect::<Result<Vec<_>>>()?;
            if primary {
                not_null.extend(columns.iter().cloned());
            }
            keys.push((name.as_ref().map(normalize_ident), columns, primary));
        }
        // The sequences of SERIAL and identity columns, and which columns
        // are identities.
        let mut sequences = Vec::new();
        let mut identities = Vec::new();
        for column in &create.columns {
            let col_name = normalize_ident(&column.name);
            if !seen.insert(col_name.clone()) {
                return Err(QuiverError::DuplicateColumn(col_name));
            }
            let mut spec = column_spec(&col_name, &column.options)?;
            let serial = serial_type(&column.data_type);
            let generated = match (&serial, &spec.identity) {
                (Some((_, int_type)), None) => Some((*int_type, Vec::new())),
                (None, Some((always, options))) => {
                    let int_type = identity_type(&column.data_type).ok_or_else(|| {
                        QuiverError::InvalidParameterValue(
                            "identity column type must be smallint, integer, or bigint".into(),
                        )
                    })?;
                    identities.push((col_name.clone(), *always));
                    Some((int_type, options.clone()))
                }
                (Some(_), Some(_)) => {
                    return Err(QuiverError::InvalidStatement(format!(
                    "both default and identity specified for column \"{col_name}\" of table \"{}\"",
                    name.name
                )))
                }
                (None, None) => None,
            };
            if let Some((int_type, options)) = generated {
                if spec.default.is_some() {
                    return Err(QuiverError::InvalidStatement(format!(
                        "both default and identity specified for column \"{col_name}\" of table \"{}\"",
                        name.name
                    )));
                }
                let taken: Vec<String> = sequences
                    .iter()
                    .map(|s: &crate::engine::sequence::SequenceDef| s.name.clone())
                    .collect();
                let sequence =
                    self.column_sequence(&name, &col_name, int_type, &options, &taken)?;
                spec.default = Some(super::sequences::nextval_default(&sequence));
                spec.nullable = false;
                sequences.push(sequence);
            }
            let nullable = spec.nullable && !not_null.contains(&col_name);
            keys.extend(
                spec.keys
                    .into_iter()
                    .map(|(given, primary)| (given, vec![col_name.clone()], primary)),
            );
            if let Some(sql) = spec.default {
                defaults_sql.push((col_name.clone(), sql));
            }
            checks.extend(spec.checks);
            references.extend(
                spec.references
                    .into_iter()
                    .map(|fk| (vec![col_name.clone()], fk)),
            );
            let data_type = match &serial {
                Some((sql_type, _)) => sql_type,
                None => &column.data_type,
            };
            fields.push(column_field(&col_name, data_type, nullable)?);
        }
        if fields.is_empty() {
            return Err(not_supported("a table without columns"));
        }
        if keys.iter().filter(|k| k.2).count() > 1 {
            return Err(QuiverError::InvalidTableDefinition(format!(
                "multiple primary keys for table \"{}\" are not allowed",
                name.name
            )));
        }
        let constraints: Vec<ConstraintDef> = keys
            .into_iter()
            .map(|(constraint_name, columns, primary)| ConstraintDef {
                name: constraint_name.unwrap_or_else(|| {
                    if primary {
                        format!("{}_pkey", name.name)
                    } else {
                        format!("{}_{}_key", name.name, columns.join("_"))
                    }
                }),
                columns,
                primary,
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let checks = name_checks(&name.name, &schema, checks)?;
        let mut taken: Vec<String> = constraints
            .iter()
            .map(|c| c.name.clone())
            .chain(checks.iter().map(|c| c.name.clone()))
            .collect();
        let referencing = super::foreign_keys::Referencing {
            name: &name,
            schema: &schema,
            primary_key: constraints
                .iter()
                .find(|c| c.primary)
                .map(|c| c.columns.clone()),
        };
        let mut foreign_keys = Vec::with_capacity(references.len());
        for (columns, clause) in &references {
            let def = self.foreign_key_def(&referencing, columns.clone(), clause, &taken)?;
            taken.push(def.name.clone());
            foreign_keys.push(def);
        }
        let id = self.db.allocate_table_id();
        let table = self
            .build_table(id, &name.name, schema, defaults_sql, constraints, checks)?
            .with_identities(identities);
        let (_, ack) = self.db.create_table(
            self.current_txn().as_deref(),
            &name,
            Arc::new(table),
            (sequences, foreign_keys),
            create.if_not_exists,
            Some(&self.current_role()),
        )?;
        ack.wait().await;
        Ok(StatementResult::command("CREATE TABLE"))
    }

    /// Creates table `name` (optionally `schema.name`) with the columns and
    /// rows of Arrow batches: the embedding and bulk-load API. String and
    /// binary views are stored as plain text and bytea.
    pub async fn create_table_from_batches(
        &mut self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
    ) -> Result<usize> {
        use datafusion::arrow::datatypes::DataType;
        let mut parser = Parser::new(&crate::sql::dialect::Postgres).try_with_sql(name)?;
        let object_name = parser.parse_object_name(false)?;
        if parser.peek_token().token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
            return Err(QuiverError::Syntax(format!(
                "invalid table name \"{name}\""
            )));
        }
        if schema.fields().is_empty() {
            return Err(not_supported("a table without columns"));
        }
        let name = self.qualified_new(&object_name)?;
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| {
                let data_type = match f.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
                    other => other.clone(),
                };
                Field::new(f.name(), data_type, f.is_nullable()).with_metadata(f.metadata().clone())
            })
            .collect();
        self.store_new_table(&name, Arc::new(Schema::new(fields)), batches)
            .await
    }

    /// Creates a plain table (no constraints or defaults) owned by the
    /// current role and stores `batches` in it. Two commits: the table,
    /// then its rows (replay needs the table before rows that refer to it).
    async fn store_new_table(
        &mut self,
        name: &QualifiedName,
        schema: SchemaRef,
        batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
    ) -> Result<usize> {
        let id = self.db.allocate_table_id();
        let table = Arc::new(self.build_table(
            id,
            &name.name,
            schema,
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )?);
        let batches = crate::engine::conform::conform_batches(&table, batches)?;
        let (_, ack) = self.db.create_table(
            self.current_txn().as_deref(),
            name,
            table.clone(),
            (Vec::new(), Vec::new()),
            false,
            Some(&self.current_role()),
        )?;
        ack.wait().await;
        self.append_rows(&table, batches).await
    }

    /// Adds rows to a table: in the open transaction, or committed now.
    async fn append_rows(
        &self,
        table: &Arc<Table>,
        batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
    ) -> Result<usize> {
        if let Some(txn) = self.current_txn() {
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
            self.db.check_table_memory(Some(&txn), bytes)?;
            txn.apply(table, crate::engine::Change::Insert(batches))?;
            return Ok(rows);
        }
        let (rows, ack) = self.db.append(table, batches, self.synchronous_commit())?;
        ack.wait().await;
        Ok(rows)
    }

    /// A table from its logged definition (recovery).
    pub(crate) fn build_table_from_def(&self, def: &TableDef, schema: SchemaRef) -> Result<Table> {
        self.build_table(
            def.id,
            &def.name,
            schema,
            def.defaults.clone(),
            def.constraints.clone(),
            def.checks.clone(),
        )?
        .with_identities(def.identities.clone())
        .with_indexes(def.indexes.clone())
    }

    /// A table from its parts: plans the DEFAULT expressions and resolves
    /// the constraint columns. Shared by CREATE TABLE and recovery.
    pub(crate) fn build_table(
        &self,
        id: u64,
        name: &str,
        schema: SchemaRef,
        defaults_sql: Vec<(String, String)>,
        constraints: Vec<ConstraintDef>,
        checks: Vec<CheckDef>,
    ) -> Result<Table> {
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let checks = checks
            .into_iter()
            .map(|c| {
                let expr = self.ctx.parse_sql_expr(&c.sql, &df_schema)?;
                let data_type = expr.get_type(&df_schema)?;
                if data_type != DataType::Boolean && data_type != DataType::Null {
                    return Err(QuiverError::DatatypeMismatch(format!(
                        "argument of CHECK must be type boolean, not type {}",
                        crate::engine::types::display_type(&Field::new("", data_type, true))
                    )));
                }
                let expr = self.ctx.create_physical_expr(expr, &df_schema)?;
                Ok(Check {
                    name: c.name,
                    sql: c.sql,
                    expr,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut defaults = HashMap::new();
        for (column, sql) in &defaults_sql {
            let mut expr = self
                .df_state()
                .create_logical_expr(&regclass_as_name(sql), &DFSchema::empty())?;
            // `tags text[] DEFAULT '{}'`: the text is an array (a cast
            // to the column's type would wrap it in a list of one).
            if let Ok(field) = schema.field_with_name(column) {
                if matches!(field.data_type(), DataType::List(_))
                    && expr.get_type(&DFSchema::empty())? == DataType::Utf8
                {
                    expr = crate::sql::pg_arrays::array_literal(expr, field.data_type())?;
                }
            }
            defaults.insert(column.clone(), expr);
        }
        let constraints = constraints
            .into_iter()
            .map(|c| {
                let columns = c
                    .columns
                    .iter()
                    .map(|col| {
                        schema
                            .index_of(col)
                            .map_err(|_| QuiverError::UndefinedColumn(col.clone()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(UniqueConstraint {
                    name: c.name,
                    columns,
                    primary: c.primary,
                    index_only: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(
            Table::with_constraints(id, name, schema, (defaults, defaults_sql), constraints)?
                .with_checks(checks),
        )
    }

    async fn create_table_as(
        &mut self,
        create: &CreateTable,
        name: QualifiedName,
        query: &Query,
    ) -> Result<StatementResult> {
        if create.if_not_exists && self.relation_exists(&name) {
            return Ok(StatementResult::command("CREATE TABLE AS"));
        }
        let plan = self
            .plan(DfStatement::Statement(Box::new(Statement::Query(
                Box::new(query.clone()),
            ))))
            .await?;
        let plan_schema = self.typed_schema(&plan);
        if !create.columns.is_empty() && create.columns.len() != plan_schema.fields().len() {
            return Err(QuiverError::Syntax(
                "CREATE TABLE AS specifies a different number of column names than the query returns".into(),
            ));
        }
        // Column names: the ones given, else the query's. Postgres makes
        // every column of a CTAS nullable.
        let mut seen = HashSet::new();
        let fields: Vec<Field> = plan_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = match create.columns.get(i) {
                    Some(c) => normalize_ident(&c.name),
                    None => f.name().clone(),
                };
                if !seen.insert(name.clone()) {
                    return Err(QuiverError::DuplicateColumn(name));
                }
                Ok(Field::new(name, f.data_type().clone(), true)
                    .with_metadata(f.metadata().clone()))
            })
            .collect::<Result<_>>()?;
        let schema = Arc::new(Schema::new(fields));
        let batches = self.collect_plan(plan).await?;
        let rows = self.store_new_table(&name, schema, batches).await?;
        Ok(StatementResult::Command {
            tag: "SELECT",
            rows: Some(rows),
        })
    }

    pub(super) async fn create_view(&mut self, create: &CreateView) -> Result<StatementResult> {
        if create.materialized {
            return Err(not_supported("CREATE MATERIALIZED VIEW"));
        }
        let name = self
            .new_relation_name(&create.name, create.temporary)
            .await?;
        if create.if_not_exists && self.relation_exists(&name) {
            return Ok(StatementResult::command("CREATE VIEW"));
        }
        // Stored with the names a later search path would miss qualified.
        let mut query = create.query.clone();
        self.qualify_relations(query.as_mut());
        let def = ViewDef {
            schema: name.schema.clone(),
            name: name.name.clone(),
            query: query.to_string(),
            columns: create
                .columns
                .iter()
                .map(|c| normalize_ident(&c.name))
                .collect(),
            default_schema: self.default_schema(),
            or_replace: create.or_replace,
            file_schema: None,
        };
        let view = self.build_view(def, &query).await?;
        let dependents = match create.or_replace {
            true => self.catalog().views_depending_on_transitively(&name),
            false => Vec::new(),
        };
        if dependents.is_empty() {
            self.install_view(&name, view, create.or_replace).await?;
        } else {
            self.replace_view_and_dependents(&name, view, dependents)
                .await?;
        }
        Ok(StatementResult::command("CREATE VIEW"))
    }

    /// CREATE OR REPLACE VIEW of a view other views read: those views are
    /// planned again over the new definition, in the order they were
    /// created, all in one change (as Postgres, where a view refers to
    /// another by identity and so always reads its current definition).
    async fn replace_view_and_dependents(
        &mut self,
        name: &QualifiedName,
        view: View,
        dependents: Vec<QualifiedName>,
    ) -> Result<()> {
        self.in_block(async |s: &mut Session| s.install_replacement(name, view, &dependents).await)
            .await
    }

    async fn install_replacement(
        &mut self,
        name: &QualifiedName,
        view: View,
        dependents: &[QualifiedName],
    ) -> Result<()> {
        self.install_view(name, view, true).await?;
        for dependent in dependents {
            let Some(old) = self.catalog().view(dependent).cloned() else {
                continue;
            };
            // External tables read files, not views.
            let Some(rebuilt) = self.replan_view(&old, None).await else {
                continue;
            };
            let rebuilt = rebuilt.map_err(|e| {
                QuiverError::InvalidTableDefinition(format!(
                    "cannot change view \"{}\": view \"{}\" depends on it and no longer plans: {e}",
                    name.name, dependent.name
                ))
            })?;
            self.install_view(dependent, rebuilt, true).await?;
        }
        Ok(())
    }

    /// Adds a view (or external table) this session created, owned by
    /// its role, in the open transaction if any.
    pub(super) async fn install_view(
        &mut self,
        name: &QualifiedName,
        view: View,
        or_replace: bool,
    ) -> Result<()> {
        let (_, ack) = self.db.create_view(
            self.current_txn().as_deref(),
            name,
            view,
            or_replace,
            Some(&self.current_role()),
        )?;
        ack.wait().await;
        Ok(())
    }

    /// Whether a table or view of this name exists (for IF NOT EXISTS).
    pub(super) fn relation_exists(&self, name: &QualifiedName) -> bool {
        self.catalog()
            .schemas
            .get(&name.schema)
            .is_some_and(|s| s.has_relation(&name.name))
    }

    /// A view from its definition: plans the query (unqualified names as
    /// the creator saw them) and renames the columns.
    pub(crate) async fn build_view(&self, def: ViewDef, query: &Query) -> Result<View> {
        let mut plan = self
            .plan_in_schema(
                DfStatement::Statement(Box::new(Statement::Query(Box::new(query.clone())))),
                &def.default_schema,
            )
            .await?;
        // Named by `CREATE VIEW v (a, b)` first, then as PostgreSQL names
        // the query's columns (`count`, not `count(*)`).
        if def.columns.len() > plan.schema().fields().len() {
            return Err(QuiverError::Syntax(
                "CREATE VIEW specifies more column names than columns".into(),
            ));
        }
        let mut names = crate::sql::column_names::view_column_names(query, plan.schema());
        for (name, given) in names.iter_mut().zip(&def.columns) {
            *name = given.clone();
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(QuiverError::DuplicateColumn(name.clone()));
            }
        }
        let current: Vec<String> = plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if names != current {
            let renamed: Vec<Expr> = plan
                .schema()
                .columns()
                .into_iter()
                .zip(&names)
                .map(|(column, name)| Expr::Column(column).alias(name))
                .collect();
            plan = LogicalPlanBuilder::from(plan).project(renamed)?.build()?;
        }
        // The planner inlines views, so the plan names only the tables
        // under them; the query names the views it reads.
        let mut depends_on = relations_read_by(&plan, &def.default_schema)?;
        for name in self.relations_named_in(query, &def.default_schema) {
            if !depends_on.contains(&name) {
                depends_on.push(name);
            }
        }
        let updatable_columns = self.updatable_columns(&def, query);
        Ok(View {
            def,
            seq: self.db.allocate_view_seq(),
            schema: self.typed_schema(&plan),
            plan,
            depends_on,
            broken: None,
            updatable_columns,
        })
    }
}

impl Session {
    /// The tables and views of ours that `query` names (unqualified
    /// names as seen from `default_schema`).
    pub(super) fn relations_named_in(
        &self,
        query: &Query,
        default_schema: &str,
    ) -> Vec<QualifiedName> {
        let mut names = Vec::new();
        let _ = datafusion::sql::sqlparser::ast::visit_relations(query, |name| {
            names.push(name.clone());
            std::ops::ControlFlow::<()>::Continue(())
        });
        let catalog = self.catalog();
        names
            .iter()
            .filter_map(|name| {
                let mut parts: Vec<String> = name
                    .0
                    .iter()
                    .map(|p| p.as_ident().map(normalize_ident))
                    .collect::<Option<_>>()?;
                let relation = parts.pop()?;
                let schema = parts.pop().unwrap_or_else(|| default_schema.to_string());
                let name = QualifiedName::new(schema, relation);
                let ours = catalog.table(&name).is_some() || catalog.view(&name).is_some();
                ours.then_some(name)
            })
            .collect()
    }
}

/// What the options of one column definition declare.
pub(super) struct ColumnSpec {
    pub nullable: bool,
    /// DEFAULT, as SQL.
    pub default: Option<String>,
    /// PRIMARY KEY / UNIQUE on the column: (name if given, primary).
    pub keys: Vec<(Option<String>, bool)>,
    /// CHECKs: (name if given, the column, SQL), as [`name_checks`] takes them.
    pub checks: Vec<(Option<String>, Option<String>, String)>,
    /// `GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY [(options)]`:
    /// whether ALWAYS, and the sequence options.
    pub identity: Option<(bool, Vec<SeqOption>)>,
    /// `REFERENCES t [(col)] ...` on the column.
    pub references: Vec<ForeignKeyConstraint>,
}

/// Reads a column's options (CREATE TABLE and ALTER TABLE ... ADD COLUMN).
/// Options QuiverDB does not have (GENERATED ... STORED, COLLATE, ...)
/// are refused with 0A000.
pub(super) fn column_spec(
    column: &str,
    options: &[datafusion::sql::sqlparser::ast::ColumnOptionDef],
) -> Result<ColumnSpec> {
    let mut spec = ColumnSpec {
        nullable: true,
        default: None,
        keys: Vec::new(),
        checks: Vec::new(),
        identity: None,
        references: Vec::new(),
    };
    for option in options {
        let given = option.name.as_ref().map(normalize_ident);
        match &option.option {
            ColumnOption::Null => {}
            ColumnOption::NotNull => spec.nullable = false,
            ColumnOption::PrimaryKey(_) => {
                spec.nullable = false;
                spec.keys.push((given, true));
            }
            ColumnOption::Unique(_) => spec.keys.push((given, false)),
            ColumnOption::Default(expr) => spec.default = Some(expr.to_string()),
            ColumnOption::ForeignKey(fk) => {
                let mut fk = fk.clone();
                if fk.name.is_none() {
                    fk.name = option.name.clone();
                }
                spec.references.push(fk)
            }
            ColumnOption::Check(check) => spec.checks.push((
                check.name.as_ref().map(normalize_ident).or(given),
                Some(column.to_string()),
                check.expr.to_string(),
            )),
            ColumnOption::Generated {
                generated_as: generated @ (GeneratedAs::Always | GeneratedAs::ByDefault),
                sequence_options,
                generation_expr: None,
                ..
            } => {
                if spec.identity.is_some() {
                    return Err(QuiverError::InvalidStatement(format!(
                        "multiple identity specifications for column \"{column}\""
                    )));
                }
                let options = sequence_ddl::identity_options(
                    sequence_options.as_deref().unwrap_or_default(),
                )?;
                spec.nullable = false;
                spec.identity = Some((*generated == GeneratedAs::Always, options));
            }
            other => {
                return Err(QuiverError::FeatureNotSupported(format!(
                    "column option \"{other}\" is not supported"
                )))
            }
        }
    }
    Ok(spec)
}

/// `SERIAL`, `BIGSERIAL`, `SMALLSERIAL` (and `serial4`, `serial8`,
/// `serial2`): the integer column type and the sequence type.
fn serial_type(
    data_type: &datafusion::sql::sqlparser::ast::DataType,
) -> Option<(datafusion::sql::sqlparser::ast::DataType, SequenceType)> {
    use datafusion::sql::sqlparser::ast::DataType as D;
    let D::Custom(name, args) = data_type else {
        return None;
    };
    if !args.is_empty() || name.0.len() != 1 {
        return None;
    }
    match name.0[0].to_string().to_ascii_lowercase().as_str() {
        "serial" | "serial4" => Some((D::Integer(None), SequenceType::Integer)),
        "bigserial" | "serial8" => Some((D::BigInt(None), SequenceType::Bigint)),
        "smallserial" | "serial2" => Some((D::SmallInt(None), SequenceType::Smallint)),
        _ => None,
    }
}

/// The sequence type of an identity column's type.
fn identity_type(data_type: &datafusion::sql::sqlparser::ast::DataType) -> Option<SequenceType> {
    use datafusion::sql::sqlparser::ast::DataType as D;
    match data_type {
        D::SmallInt(_) | D::Int2(_) => Some(SequenceType::Smallint),
        D::Int(_) | D::Integer(_) | D::Int4(_) => Some(SequenceType::Integer),
        D::BigInt(_) | D::Int8(_) => Some(SequenceType::Bigint),
        _ => None,
    }
}

/// A DEFAULT's SQL as the planner takes it: `'name'::regclass` (how
/// PostgreSQL writes a sequence in `nextval('s'::regclass)`) becomes the
/// name itself, which `nextval` resolves when it runs.
pub(super) fn regclass_as_name(sql: &str) -> std::borrow::Cow<'_, str> {
    use datafusion::sql::sqlparser::ast::{visit_expressions_mut, DataType as D, Expr as SqlExpr};
    use std::ops::ControlFlow;
    if !sql.to_ascii_lowercase().contains("regclass") {
        return std::borrow::Cow::Borrowed(sql);
    }
    let Ok(mut expr) = Parser::new(&crate::sql::dialect::Postgres)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
    else {
        return std::borrow::Cow::Borrowed(sql);
    };
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let SqlExpr::Cast {
            expr: inner,
            data_type,
            ..
        } = e
        {
            let regclass = match data_type {
                D::Regclass => true,
                D::Custom(name, _) => name.to_string().eq_ignore_ascii_case("regclass"),
                _ => false,
            };
            if regclass {
                let inner = inner.as_ref().clone();
                *e = inner;
            }
        }
        ControlFlow::<()>::Continue(())
    });
    std::borrow::Cow::Owned(expr.to_string())
}

/// Names CHECK constraints as Postgres does: the given name, else
/// `<table>_<column>_check` when the expression reads one column (or was
/// declared on one), else `<table>_check`; repeats get 1, 2, ...
pub(super) fn name_checks(
    table: &str,
    schema: &SchemaRef,
    checks: Vec<(Option<String>, Option<String>, String)>,
) -> Result<Vec<CheckDef>> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(checks.len());
    for (given, column, sql) in checks {
        let name = match given {
            Some(name) => name,
            None => {
                let column = column.or_else(|| {
                    let read = columns_read(&sql, schema);
                    (read.len() == 1).then(|| read[0].clone())
                });
                let base = match column {
                    Some(column) => format!("{table}_{column}_check"),
                    None => format!("{table}_check"),
                };
                let mut name = base.clone();
                let mut n = 1;
                while taken.contains(&name) {
                    name = format!("{base}{n}");
                    n += 1;
                }
                name
            }
        };
        taken.insert(name.clone());
        out.push(CheckDef { name, sql });
    }
    Ok(out)
}

/// The table's columns an expression mentions (by identifier).
pub(super) fn columns_read(sql: &str, schema: &SchemaRef) -> Vec<String> {
    use datafusion::sql::sqlparser::ast::{visit_expressions, Expr as SqlExpr};
    use std::ops::ControlFlow;
    let Ok(expr) = Parser::new(&crate::sql::dialect::Postgres)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
    else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    let _ = visit_expressions(&expr, |e| {
        let name = match e {
            SqlExpr::Identifier(i) => Some(normalize_ident(i)),
            SqlExpr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
            _ => None,
        };
        if let Some(name) = name {
            if schema.index_of(&name).is_ok() && !found.contains(&name) {
                found.push(name);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Every table or view a plan scans, including inside subqueries.
fn relations_read_by(plan: &LogicalPlan, default_schema: &str) -> Result<Vec<QualifiedName>> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut found = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            found.push(scan.table_name.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found
        .into_iter()
        .map(|r| {
            QualifiedName::new(
                r.schema().unwrap_or(default_schema).to_string(),
                r.table().to_string(),
            )
        })
        .collect())
}

fn col_ident(
    expr: &datafusion::sql::sqlparser::ast::Expr,
) -> Result<datafusion::sql::sqlparser::ast::Ident> {
    match expr {
        datafusion::sql::sqlparser::ast::Expr::Identifier(i) => Ok(i.clone()),
        other => Err(QuiverError::Syntax(format!(
            "expected a column name, found \"{other}\""
        ))),
    }
}

impl Session {
    /// CREATE SCHEMA.
    pub(super) async fn create_schema(
        &mut self,
        schema_name: &SchemaName,
        if_not_exists: bool,
    ) -> Result<StatementResult> {
        let name = match schema_name {
            SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => {
                object_name_parts(n)?.pop().unwrap_or_default()
            }
            SchemaName::UnnamedAuthorization(_) => {
                return Err(not_supported("CREATE SCHEMA AUTHORIZATION without a name"))
            }
        };
        if name == crate::sql::catalog::PG_CATALOG
            || name == crate::sql::catalog::INFORMATION_SCHEMA
        {
            if if_not_exists {
                return Ok(StatementResult::command("CREATE SCHEMA"));
            }
            return Err(QuiverError::DuplicateSchema(name));
        }
        if name.starts_with("pg_") {
            return Err(QuiverError::ReservedName(format!(
                "unacceptable schema name \"{name}\": the prefix \"pg_\" is reserved for system schemas"
            )));
        }
        let (_, ack) = self.db.create_schema(
            self.current_txn().as_deref(),
            &name,
            if_not_exists,
            Some(&self.current_role()),
        )?;
        ack.wait().await;
        Ok(StatementResult::command("CREATE SCHEMA"))
    }

    /// TRUNCATE: in a block, part of the block; else committed at once.
    pub(super) async fn truncate(&mut self, truncate: &Truncate) -> Result<StatementResult> {
        let catalog = self.catalog();
        let mut tables = Vec::new();
        let mut names = Vec::new();
        for target in &truncate.table_names {
            let name = self.qualified(&target.name)?;
            match catalog.table(&name) {
                Some(table) => tables.push(table.clone()),
                None if catalog.view(&name).is_some() => {
                    return Err(QuiverError::WrongObjectType(format!(
                        "\"{}\" is not a table",
                        name.name
                    )))
                }
                None => return Err(QuiverError::UndefinedTable(name.name)),
            }
            names.push(name);
        }
        // A referenced table empties only with the tables that reference
        // it (CASCADE adds them).
        let cascade = matches!(
            truncate.cascade,
            Some(datafusion::sql::sqlparser::ast::CascadeOption::Cascade)
        );
        let mut i = 0;
        while i < names.len() {
            for fk in catalog.foreign_keys_to(&names[i]) {
                let child = fk.child();
                if names.contains(&child) {
                    continue;
                }
                if !cascade {
                    return Err(QuiverError::FeatureNotSupported(format!(
                        "cannot truncate a table referenced in a foreign key constraint: table \"{}\" references \"{}\"; truncate table \"{}\" at the same time, or use TRUNCATE ... CASCADE",
                        fk.table, fk.ref_table, fk.table
                    )));
                }
                if let Some(table) = catalog.table(&child) {
                    tables.push(table.clone());
                    names.push(child);
                }
            }
            i += 1;
        }
        if let Some(txn) = self.current_txn() {
            for table in &tables {
                txn.apply(table, crate::engine::Change::Truncate)?;
            }
        } else {
            let ack = self.db.truncate(&tables)?;
            ack.wait().await;
        }
        Ok(StatementResult::command("TRUNCATE TABLE"))
    }
}
