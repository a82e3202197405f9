//! Planning with DataFusion: a statement to a logical plan with the
//! session's search path and PostgreSQL's rules applied, and a plan run to
//! its rows.

use datafusion::logical_expr::{LogicalPlan, WriteOp};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};

use super::{column_names, object_name_parts, sources, Session, StatementResult};
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::{order_by, pg_casts, pg_types_in};
use datafusion::sql::sqlparser::ast::Ident;

impl Session {
    /// Plans with unqualified names resolving in `schema` (view bodies are
    /// planned as their creator saw them).
    pub(super) async fn plan_in_schema(
        &self,
        statement: DfStatement,
        schema: &str,
    ) -> Result<LogicalPlan> {
        let current = self.df_state().config_options().catalog.default_schema == schema;
        if current {
            return self.plan(statement).await;
        }
        let previous = self.change_df_state(|state| {
            std::mem::replace(
                &mut state.config_mut().options_mut().catalog.default_schema,
                schema.to_string(),
            )
        });
        let planned = self.plan(statement).await;
        self.change_df_state(|state| {
            state.config_mut().options_mut().catalog.default_schema = previous
        });
        planned
    }

    /// What commits wait for (`synchronous_commit`).
    pub(super) fn synchronous_commit(&self) -> crate::engine::SyncLevel {
        self.settings
            .get("synchronous_commit")
            .ok()
            .and_then(crate::engine::SyncLevel::parse)
            .unwrap_or(crate::engine::SyncLevel::On)
    }

    pub(super) async fn plan(&self, mut statement: DfStatement) -> Result<LogicalPlan> {
        self.qualify_along_search_path(&mut statement);
        let mut statement = self.through_views(&statement)?.unwrap_or(statement);
        let is_query = matches!(&statement, DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)));
        crate::sql::catalog::rewrite_client_sql(&mut statement);
        crate::sql::lateral::rewrite_lateral_functions(&mut statement);
        crate::sql::outer_using::rewrite_outer_using(&mut statement)?;
        pg_types_in::rewrite_casts(&mut statement);
        crate::sql::pg_generate_series::refuse_ordinality(&statement)?;
        crate::sql::pg_generate_series::expand_in_select_lists(&mut statement);
        if let DfStatement::Statement(s) = &mut statement {
            if let Statement::Insert(insert) = s.as_mut() {
                self.check_identity_insert(insert)?;
                self.override_user_value(insert).await?;
                self.fill_values_defaults(insert)?;
            }
        }
        if let DfStatement::Statement(s) = &mut statement {
            order_by::resolve_order_by(s)?;
            column_names::separate_cast_aggregates(s);
        }
        match &mut statement {
            DfStatement::Statement(s) => column_names::separate_repeated_names(s),
            DfStatement::Explain(e) => {
                if let DfStatement::Statement(s) = e.statement.as_mut() {
                    column_names::separate_repeated_names(s)
                }
            }
            _ => {}
        }
        // A query over a catalog that is always empty here (psql asks for
        // row security policies, statistics objects, ...) answers no rows;
        // when DataFusion cannot plan or run it as written, the answer is
        // given by an equivalent empty query.
        let fallback = if is_query {
            crate::sql::catalog::empty_result_fallback(&statement).map(|mut empty| {
                if let DfStatement::Statement(s) = &mut empty {
                    column_names::separate_repeated_names(s);
                }
                empty
            })
        } else {
            None
        };
        let planned = match self.df_state().statement_to_plan(statement.clone()).await {
            // An INSERT over a VALUES of another width than the target
            // (DataFusion plans that VALUES as the target's rows).
            Err(e) => match self.plan_insert_over_values(&statement).await? {
                Some(plan) => Ok(plan),
                None => match self.plan_narrow_insert(&statement).await? {
                    Some(plan) => Ok(plan),
                    None => Err(e),
                },
            },
            planned => planned,
        };
        let plan = match (planned, fallback) {
            (Ok(plan), None) => plan,
            (Ok(plan), Some(empty)) => {
                if self.df_state().create_physical_plan(&plan).await.is_ok() {
                    plan
                } else {
                    self.df_state().statement_to_plan(empty).await?
                }
            }
            (Err(_), Some(empty)) => self.df_state().statement_to_plan(empty).await?,
            (Err(e), None) => return Err(e.into()),
        };
        let plan = if is_query {
            crate::sql::pg_values::floats_win(plan)?
        } else {
            plan
        };
        Ok(pg_casts::rewrite_text_casts(plan, &self.text_casts)?)
    }

    /// Runs a DataFusion plan: INSERT through our commit path, anything
    /// that returns rows through DataFusion.
    pub(super) async fn run_plan(&mut self, plan: LogicalPlan) -> Result<StatementResult> {
        match &plan {
            LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) => self.insert(dml).await,
            LogicalPlan::Dml(dml) => Err(not_supported(format!("{}", dml.op))),
            LogicalPlan::Ddl(ddl) => Err(not_supported(ddl.name())),
            LogicalPlan::Statement(_) | LogicalPlan::Copy(_) => {
                Err(not_supported(format!("{}", plan.display())))
            }
            _ => {
                let analyzed = super::execution::Analyzed::of(self, &plan);
                let schema = sources::annotate(
                    &plan,
                    analyzed.schema(&plan),
                    &self.catalog(),
                    &self.default_schema(),
                );
                // Partition by partition, in order: a scan's partitions
                // are consecutive slices of the table, so rows come back
                // in table order when the query does not reorder them
                // (as a Postgres sequential scan returns them).
                // Functions that act on the session (pg_notify, set_config,
                // advisory locks) have run when the statement ends.
                let acts = acts_on_session(&plan);
                let rows = self
                    .execute_analyzed(plan, analyzed)
                    .await?
                    .conformed(schema.clone());
                if self.stream_results && !acts {
                    return Ok(StatementResult::RowStream {
                        schema,
                        rows,
                        tag: "SELECT",
                    });
                }
                Ok(StatementResult::Rows {
                    schema,
                    batches: rows.collect().await?,
                    tag: "SELECT",
                })
            }
        }
    }

    /// `INSERT ... VALUES (1, DEFAULT)`: replaces each DEFAULT with the
    /// column's default expression (or NULL), which DataFusion then plans.
    /// `INSERT INTO t VALUES (1)` into a wider table names the leading
    /// columns, as Postgres does (the rest get their defaults).
    pub(super) fn fill_values_defaults(
        &self,
        insert: &mut datafusion::sql::sqlparser::ast::Insert,
    ) -> Result<()> {
        use datafusion::sql::sqlparser::ast::{SetExpr, TableObject};
        let Some(source) = insert.source.as_mut() else {
            return Ok(());
        };
        let SetExpr::Values(values) = source.body.as_mut() else {
            return Ok(());
        };
        let width = values.rows.first().map_or(0, |r| r.content.len());
        let uniform = values.rows.iter().all(|r| r.content.len() == width);
        let has_default = values
            .rows
            .iter()
            .flat_map(|r| r.content.iter())
            .any(is_default_keyword);
        let widens = insert.columns.is_empty() && uniform;
        if !has_default && !widens {
            return Ok(());
        }
        let TableObject::TableName(name) = &insert.table else {
            return Ok(());
        };
        let table = self
            .catalog()
            .table(&self.qualified(name)?)
            .cloned()
            .ok_or_else(|| QuiverError::UndefinedTable(name.to_string()))?;
        let schema = table.schema_ref();
        if insert.columns.is_empty() && uniform && width < schema.fields().len() {
            insert.columns = schema.fields()[..width]
                .iter()
                .map(|f| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
                .collect();
        }
        let columns = insert_columns(&insert.columns, &schema)?;
        for row in values.rows.iter_mut() {
            for (i, value) in row.content.iter_mut().enumerate() {
                if !is_default_keyword(value) {
                    continue;
                }
                let sql = columns
                    .get(i)
                    .and_then(|c| table.defaults_sql().iter().find(|(d, _)| d == c))
                    .map(|(_, sql)| super::ddl::regclass_as_name(sql))
                    .unwrap_or("NULL".into());
                *value =
                    datafusion::sql::sqlparser::parser::Parser::new(&crate::sql::dialect::Postgres)
                        .try_with_sql(&sql)?
                        .parse_expr()?;
            }
        }
        Ok(())
    }
}

/// The columns an INSERT gives values for, in order: those it lists, else
/// every column of the table.
pub(super) fn insert_columns(
    listed: &[ObjectName],
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<Vec<String>> {
    if listed.is_empty() {
        return Ok(schema.fields().iter().map(|f| f.name().clone()).collect());
    }
    listed
        .iter()
        .map(|c| object_name_parts(c).map(|mut p| p.pop().unwrap_or_default()))
        .collect()
}

/// `DEFAULT` in a VALUES row or a SET (an unquoted identifier of that name).
pub(super) fn is_default_keyword(e: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    matches!(e, datafusion::sql::sqlparser::ast::Expr::Identifier(i)
        if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// Whether `plan` calls a function whose effect on the session must be
/// complete when its statement ends.
fn acts_on_session(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Expr;
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    let name = f.func.name();
                    found |= name == "pg_notify"
                        || name == "set_config"
                        || name.starts_with("pg_advisory")
                        || name.starts_with("pg_try_advisory");
                }
                Ok(if found {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    });
    found
}

pub(super) fn returns_rows(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)
    )
}
