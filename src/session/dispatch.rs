//! The dispatch: each statement to the code that runs it. DataFusion
//! plans queries and plain INSERTs; everything else is ours.

use datafusion::common::ParamValues;
use datafusion::sql::parser::{ResetStatement, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{AlterIndexOperation, ObjectName, ObjectType, Statement};

use super::classify::classify;
use super::{
    column_names, normalize_ident, object_name_parts, unsupported, Session, StatementResult,
};
use crate::engine::RelationType;
use crate::error::{not_supported, QuiverError, Result};

impl Session {
    /// Executes one statement that carries no parameters.
    pub async fn execute_statement(&mut self, statement: DfStatement) -> Result<StatementResult> {
        let DfStatement::Statement(stmt) = &statement else {
            return match &statement {
                DfStatement::Explain(_) => self.query(statement).await,
                DfStatement::Reset(ResetStatement::Variable(name)) => self.reset_variable(name),
                DfStatement::CreateExternalTable(c) => self.create_external_table(c).await,
                _ => Err(unsupported(&statement)),
            };
        };
        if classify(&statement).dml {
            return self.execute_dml(stmt, None).await;
        }
        match stmt.as_ref() {
            Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. } => {
                self.query(statement).await
            }
            Statement::Copy { .. } => self.copy(stmt).await,
            Statement::CreateRole(create) => self.create_role(create, false).await,
            Statement::AlterRole { name, operation } => self.alter_role(name, operation).await,
            Statement::Grant(grant) => self.grant(grant).await,
            Statement::Revoke(revoke) => self.revoke(revoke).await,
            Statement::CreateTable(create) => self.create_table(create).await,
            Statement::AlterTable(alter) => self.alter_table(alter).await,
            Statement::CreateIndex(create) => self.create_index(create).await,
            Statement::Comment {
                object_type,
                object_name,
                comment,
                ..
            } => {
                self.comment(*object_type, object_name, comment.clone())
                    .await
            }
            Statement::CreateView(create) => self.create_view(create).await,
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => self.create_schema(schema_name, *if_not_exists).await,
            Statement::Drop {
                object_type: ObjectType::Role,
                if_exists,
                names,
                ..
            } => self.drop_roles(names, *if_exists).await,
            Statement::AlterIndex {
                name,
                operation: AlterIndexOperation::RenameIndex { index_name },
            } => self.rename_index(name, index_name).await,
            Statement::Drop {
                object_type: ObjectType::Index,
                if_exists,
                names,
                cascade,
                ..
            } => self.drop_indexes(names, *if_exists, *cascade).await,
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => self.drop(*object_type, *if_exists, names, *cascade).await,
            Statement::Truncate(truncate) => self.truncate(truncate).await,
            Statement::Analyze(analyze) => self.maintain("ANALYZE", analyze.table_name.as_ref()),
            Statement::Vacuum(vacuum) => {
                if self.txn.is_some() {
                    return Err(QuiverError::ActiveTransaction(
                        "VACUUM cannot run inside a transaction block".into(),
                    ));
                }
                self.maintain("VACUUM", vacuum.table_name.as_ref())
            }
            Statement::Set(set) => self.set(set),
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::Reset(reset) => self.reset_statement(reset),
            Statement::Deallocate { name, .. } => Ok(self.deallocate(name)),
            Statement::Discard { object_type } => self.discard(*object_type),
            Statement::LISTEN { channel } => self.listen(channel),
            Statement::UNLISTEN { channel } => self.unlisten(channel),
            Statement::NOTIFY { channel, payload } => self.notify(channel, payload.as_deref()),
            Statement::Close { cursor } => self.close(cursor),
            Statement::Declare { stmts } => self.declare(stmts, None).await,
            Statement::Fetch {
                name,
                direction,
                into: None,
                ..
            } => self.fetch(name, direction).await,
            Statement::StartTransaction { .. } => self.begin(),
            Statement::Commit { .. } => self.commit().await,
            Statement::Rollback {
                savepoint: None, ..
            } => Ok(self.rollback()),
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => self.rollback_to_savepoint(normalize_ident(name)),
            Statement::Savepoint { name } => self.savepoint(normalize_ident(name)),
            Statement::ReleaseSavepoint { name } => self.release_savepoint(normalize_ident(name)),
            _ => Err(unsupported(&statement)),
        }
    }

    /// A statement DataFusion plans (a query, a plain INSERT, EXPLAIN),
    /// its result columns named as PostgreSQL names them.
    async fn query(&mut self, statement: DfStatement) -> Result<StatementResult> {
        let names = column_names::postgres_column_names(&statement);
        let plan = self.plan(statement).await?;
        Ok(rename_columns(self.run_plan(plan).await?, &names))
    }

    pub(super) async fn execute_dml_owned(
        &mut self,
        statement: DfStatement,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        let DfStatement::Statement(s) = statement else {
            return Err(QuiverError::Internal("not a DML statement".into()));
        };
        self.execute_dml(&s, params.as_ref()).await
    }

    pub(super) async fn drop(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: &[ObjectName],
        cascade: bool,
    ) -> Result<StatementResult> {
        match object_type {
            ObjectType::Table | ObjectType::View | ObjectType::Sequence => {
                let (kind, tag) = match object_type {
                    ObjectType::View => (RelationType::View, "DROP VIEW"),
                    ObjectType::Sequence => (RelationType::Sequence, "DROP SEQUENCE"),
                    _ => (RelationType::Table, "DROP TABLE"),
                };
                let names = names
                    .iter()
                    .map(|n| self.qualified(n))
                    .collect::<Result<Vec<_>>>()?;
                let (_, ack) = self.db.drop_relations(
                    self.current_txn().as_deref(),
                    &names,
                    kind,
                    if_exists,
                    cascade,
                )?;
                ack.wait().await;
                Ok(StatementResult::command(tag))
            }
            ObjectType::Schema => {
                for name in names {
                    let name = object_name_parts(name)?.pop().unwrap_or_default();
                    let (_, ack) = self.db.drop_schema(
                        self.current_txn().as_deref(),
                        &name,
                        if_exists,
                        cascade,
                    )?;
                    ack.wait().await;
                }
                Ok(StatementResult::command("DROP SCHEMA"))
            }
            other => Err(not_supported(format!("DROP {other}"))),
        }
    }
}

impl Session {
    /// VACUUM and ANALYZE: the table named must exist; there is nothing
    /// else to do. A segment is rewritten without its deleted rows as soon
    /// as a quarter of it is gone (no VACUUM needed), and the planner takes
    /// its statistics from the data as it is, so they never need
    /// refreshing.
    fn maintain(
        &mut self,
        tag: &'static str,
        table: Option<&ObjectName>,
    ) -> Result<StatementResult> {
        if let Some(name) = table {
            let name = self.qualified(name)?;
            let catalog = self.catalog();
            if catalog.table(&name).is_none() {
                if catalog.view(&name).is_none() {
                    return Err(QuiverError::UndefinedTable(name.name));
                }
                // PostgreSQL warns and goes on.
                self.notice(format!(
                    "skipping \"{}\" --- cannot {} non-tables or special system tables",
                    name.name,
                    tag.to_lowercase()
                ));
            }
        }
        Ok(StatementResult::command(tag))
    }
}

pub(super) fn rename_columns(
    result: StatementResult,
    names: &Option<Vec<Option<String>>>,
) -> StatementResult {
    match result {
        StatementResult::Rows {
            schema,
            batches,
            tag,
        } => StatementResult::Rows {
            schema: column_names::rename(&schema, names),
            batches,
            tag,
        },
        StatementResult::RowStream { schema, rows, tag } => StatementResult::RowStream {
            schema: column_names::rename(&schema, names),
            rows,
            tag,
        },
        other => other,
    }
}
