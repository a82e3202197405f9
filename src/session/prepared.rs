//! Prepared statements (the extended protocol's Parse, Bind, Execute):
//! parsed and planned once, run with each Bind's parameters.

use std::collections::VecDeque;

use datafusion::arrow::datatypes::{Field, FieldRef, SchemaRef};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ParamValues;
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, TryCast};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use std::sync::Arc;

use super::classify::classify;
use super::dispatch::rename_columns;
use super::plan::returns_rows;
use super::script::is_checkpoint;
use super::variables::own_statement_schema;
use super::{column_names, lookup, sources, Session, StatementResult};
use crate::error::{QuiverError, Result};
use crate::metrics;
use crate::sql::sequence_ddl::{self, SequenceStatement};

/// A statement parsed (and, where DataFusion plans it, planned) once and
/// executed any number of times with different parameters.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    pub(super) statement: Option<DfStatement>,
    pub(super) plan: Option<LogicalPlan>,
    pub(super) catalog_version: u64,
    /// Types of `$1..$n`, as DataFusion inferred them (None: unknown),
    /// with the Postgres type tags of the columns they are compared with.
    pub param_fields: Vec<Option<FieldRef>>,
    /// Columns of the result, when the statement returns rows.
    pub result_schema: Option<SchemaRef>,
    /// Postgres names of the result columns (see `column_names`).
    pub(super) column_names: Option<Vec<Option<String>>>,
    /// The statement is CHECKPOINT (which the SQL parser does not know).
    pub(super) checkpoint: bool,
    /// The statement is SET CONSTRAINTS: names (None for ALL), deferred.
    pub(super) set_constraints: Option<(Option<Vec<String>>, bool)>,
    /// The statement is CREATE or ALTER SEQUENCE (read by our own parser).
    pub(super) sequence: Option<SequenceStatement>,
    /// The statement is a point lookup by key, run without planning.
    pub(super) lookup: Option<lookup::KeyLookup>,
    /// The statement is MOVE: `statement` is the FETCH of the rows it
    /// skips.
    pub(super) moves: bool,
    /// The statement is an INSERT with this OVERRIDING clause.
    pub(super) overriding: Option<super::Overriding>,
}

impl Session {
    /// Parses and plans one statement for the extended protocol.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        // INSERT ... OVERRIDING: planned (and so checked) as it will run.
        let overriding = super::script::strip_overriding(sql);
        let outer = self.overriding;
        self.overriding = overriding.as_ref().map(|(_, o)| *o).or(outer);
        let prepared = self.prepare_statement(sql, overriding).await;
        self.overriding = outer;
        prepared
    }

    async fn prepare_statement(
        &mut self,
        sql: &str,
        overriding: Option<(String, super::Overriding)>,
    ) -> Result<Prepared> {
        // Statements the SQL parser does not read (as PostgreSQL has them).
        let checkpoint = is_checkpoint(sql);
        let sequence = match sequence_ddl::is_sequence_statement(sql) {
            true => Some(sequence_ddl::parse(sql)?),
            false => None,
        };
        let motion = super::script::parse_cursor_motion(sql).transpose()?;
        let set_constraints = super::foreign_keys::parse_set_constraints(sql).transpose()?;
        if checkpoint || sequence.is_some() || set_constraints.is_some() {
            return Ok(Prepared {
                set_constraints,
                sql: sql.to_string(),
                statement: None,
                plan: None,
                catalog_version: self.db.plans_version(),
                param_fields: Vec::new(),
                result_schema: None,
                column_names: None,
                checkpoint,
                sequence,
                lookup: None,
                moves: false,
                overriding: None,
            });
        }
        let mut statements = if let Some((statement, _)) = &motion {
            VecDeque::from([statement.clone()])
        } else if crate::sql::copy_options::is_copy(sql) {
            VecDeque::from([crate::sql::copy_options::parse_copy(sql)?])
        } else if let Some((insert, _)) = &overriding {
            Session::parse(insert)?
        } else {
            Session::parse(sql)?
        };
        if statements.len() > 1 {
            return Err(QuiverError::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            ));
        }
        let catalog_version = self.db.plans_version();
        let Some(statement) = statements.pop_front() else {
            return Ok(Prepared {
                sql: sql.to_string(),
                statement: None,
                plan: None,
                catalog_version,
                param_fields: Vec::new(),
                result_schema: None,
                column_names: None,
                checkpoint: false,
                set_constraints: None,
                sequence: None,
                lookup: None,
                moves: false,
                overriding: None,
            });
        };
        let mut prepared = Prepared {
            sql: sql.to_string(),
            statement: None,
            plan: None,
            catalog_version,
            param_fields: Vec::new(),
            result_schema: own_statement_schema(&statement),
            column_names: column_names::postgres_column_names(&statement),
            checkpoint: false,
            set_constraints: None,
            sequence: None,
            lookup: None,
            moves: false,
            overriding: overriding.map(|(_, o)| o),
        };
        prepared.moves = motion.is_some_and(|(_, moves)| moves);
        // FETCH: the rows of the cursor as it is now (psycopg 3 declares
        // its named cursors before it prepares their FETCH).
        if let (false, DfStatement::Statement(s)) = (prepared.moves, &statement) {
            if let Statement::Fetch { name, .. } = s.as_ref() {
                prepared.result_schema = self.cursor_schema(&super::normalize_ident(name));
            }
        }
        let class = classify(&statement);
        // DECLARE ... CURSOR FOR <query with $1>: the query's parameters.
        if let DfStatement::Statement(s) = &statement {
            if let Statement::Declare { stmts } = s.as_ref() {
                if let Some(query) = stmts.first().and_then(|d| d.for_query.clone()) {
                    let plan = self
                        .plan(DfStatement::Statement(Box::new(Statement::Query(query))))
                        .await?;
                    prepared.param_fields = parameter_fields(&plan)?;
                }
            }
        }
        if let (true, DfStatement::Statement(s)) = (class.dml, &statement) {
            let (params, returns) = self.describe_dml(s).await?;
            prepared.param_fields = params;
            prepared.result_schema = returns;
            prepared.statement = Some(statement);
            return Ok(prepared);
        }
        if class.planned {
            let plan = self.plan(statement.clone()).await?;
            prepared.param_fields = parameter_fields(&plan)?;
            let typed = self.typed_schema(&plan);
            prepared.result_schema = returns_rows(&plan).then(|| {
                let schema = column_names::rename(&typed, &prepared.column_names);
                sources::annotate(&plan, schema, &self.catalog(), &self.default_schema())
            });
            // The schema run_plan would report for the rows.
            let rows_schema =
                sources::annotate(&plan, typed, &self.catalog(), &self.default_schema());
            prepared.lookup = lookup::KeyLookup::of(self, &plan, rows_schema);
            prepared.plan = Some(plan);
        }
        prepared.statement = Some(statement);
        Ok(prepared)
    }

    /// Executes a prepared statement with bound parameter values.
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        self.take_stream_failure();
        self.info.start_query(&prepared.sql);
        let started = std::time::Instant::now();
        let outer = self.overriding;
        self.overriding = prepared.overriding.or(outer);
        let result = self.execute_prepared_inner(prepared, params).await;
        self.overriding = outer;
        if result.is_err() {
            self.note_failure();
        }
        let kind = match &prepared.statement {
            Some(statement) => classify(statement).kind,
            None => metrics::Kind::Utility,
        };
        metrics::metrics().statement(kind, metrics::Outcome::of(&result), started.elapsed());
        self.log_statement(&prepared.sql, started.elapsed(), result.is_err());
        match result {
            Ok(result) => Ok(self.end_statement(result)),
            Err(e) => {
                self.publish_state();
                Err(e)
            }
        }
    }

    pub(super) async fn execute_prepared_inner(
        &mut self,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        self.admit(prepared.statement.as_ref())?;
        if prepared.checkpoint {
            self.authorize_checkpoint()?;
            return self.checkpoint().await;
        }
        if let Some((names, deferred)) = &prepared.set_constraints {
            return self.set_constraints(names.clone(), *deferred);
        }
        if let Some(statement) = &prepared.sequence {
            let statement = statement.clone();
            return self
                .run_with_timeout(|s| Box::pin(s.sequence_statement(statement)))
                .await;
        }
        if let Some(statement) = &prepared.statement {
            self.authorize(statement)?;
        }
        let Some(statement) = prepared.statement.clone() else {
            return Ok(StatementResult::Empty);
        };
        if prepared.moves {
            return self
                .run_with_timeout(|s| Box::pin(s.execute_statement(statement)))
                .await
                .and_then(moved);
        }
        if classify(&statement).dml {
            return self
                .run_with_timeout(|s| Box::pin(s.execute_dml_owned(statement, params)))
                .await;
        }
        if let DfStatement::Statement(s) = &statement {
            if let Statement::Declare { stmts } = s.as_ref() {
                let stmts = stmts.clone();
                return self
                    .run_with_timeout(|s| Box::pin(async move { s.declare(&stmts, params).await }))
                    .await;
            }
        }
        let plan = match &prepared.plan {
            // The catalog changed since Parse: plan again, so the statement
            // sees tables created or dropped in between.
            Some(_) if prepared.catalog_version != self.db.plans_version() => {
                Some(self.plan(statement.clone()).await?)
            }
            other => other.clone(),
        };
        if let Some(lookup) = &prepared.lookup {
            if prepared.catalog_version == self.db.plans_version() {
                if let Some(result) = self.run_lookup(lookup, params.as_ref())? {
                    return Ok(rename_columns(result, &prepared.column_names));
                }
            }
        }
        match plan {
            Some(plan) => {
                let plan = match params {
                    Some(params) => plan.with_param_values(params)?,
                    None => plan,
                };
                let result = self.run_with_timeout(|s| Box::pin(s.run_plan(plan))).await;
                Ok(rename_columns(result?, &prepared.column_names))
            }
            None => {
                if params.is_some_and(|p| !matches!(&p, ParamValues::List(v) if v.is_empty())) {
                    return Err(QuiverError::FeatureNotSupported(
                        "parameters are only allowed in queries and INSERT".into(),
                    ));
                }
                self.run_with_timeout(|s| Box::pin(s.execute_statement(statement)))
                    .await
            }
        }
    }
}

/// The result of MOVE from that of the FETCH of the rows it skips.
pub(super) fn moved(fetched: StatementResult) -> Result<StatementResult> {
    match fetched {
        StatementResult::Rows { batches, .. } => Ok(StatementResult::Command {
            tag: "MOVE",
            rows: Some(batches.iter().map(|b| b.num_rows()).sum()),
        }),
        _ => Err(QuiverError::Internal("MOVE read no rows".into())),
    }
}

/// The first exact argument types a signature lists for `arity` arguments.
fn exact_types(
    signature: &datafusion::logical_expr::TypeSignature,
    arity: usize,
) -> Option<Vec<datafusion::arrow::datatypes::DataType>> {
    use datafusion::logical_expr::TypeSignature;
    match signature {
        TypeSignature::Exact(types) if types.len() == arity => Some(types.clone()),
        TypeSignature::OneOf(signatures) => signatures.iter().find_map(|s| exact_types(s, arity)),
        _ => None,
    }
}

/// `$1..$n` in order; a gap (an unused `$k`) is reported as unknown.
pub(super) fn parameter_fields(plan: &LogicalPlan) -> Result<Vec<Option<FieldRef>>> {
    let mut found = plan.get_parameter_fields()?;
    let _ = plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            let _ = expr.apply(|e| {
                let mut give = |p: &Expr, field: FieldRef| {
                    if let Expr::Placeholder(p) = p {
                        let slot = found.entry(p.id.clone()).or_insert(None);
                        if slot.is_none() {
                            *slot = Some(field);
                        }
                    }
                };
                match e {
                    // `$1::int`: DataFusion leaves a parameter that is only
                    // cast untyped; Postgres gives it the cast's type, and
                    // clients send it as such.
                    Expr::Cast(Cast { expr, field, .. })
                    | Expr::TryCast(TryCast { expr, field, .. }) => give(expr, field.clone()),
                    // `f($1)`: the type f's signature names first for it
                    // (`pg_advisory_lock($1)` takes a bigint).
                    Expr::ScalarFunction(f) => {
                        if let Some(types) =
                            exact_types(&f.func.signature().type_signature, f.args.len())
                        {
                            for (arg, data_type) in f.args.iter().zip(types) {
                                give(arg, Arc::new(Field::new("", data_type, true)));
                            }
                        }
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let max = found
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Ok((1..=max)
        .map(|i| found.get(&format!("${i}")).cloned().flatten())
        .collect())
}
