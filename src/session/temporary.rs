//! Temporary tables: `CREATE TEMP TABLE` puts a table in a schema of the
//! session's own (`pg_temp_<id>`, made with the first one), searched
//! before the search path and dropped when the session ends, by `DISCARD
//! TEMP`/`DISCARD ALL`, or at the next start after a crash. Their rows
//! go through the WAL like any table's, so a temporary table holds as
//! much as a table can.

use datafusion::sql::sqlparser::ast::{ObjectName, OnCommit};

use super::transaction::OpenTransaction;
use super::{object_name_parts, Session};
use crate::engine::{QualifiedName, RelationType};
use crate::error::{not_supported, QuiverError, Result};

impl Session {
    /// The qualified name of a relation to create; a temporary one goes
    /// to the session's temporary schema, made on first use.
    pub(super) async fn new_relation_name(
        &mut self,
        name: &ObjectName,
        temporary: bool,
    ) -> Result<QualifiedName> {
        let mut qualified = self.qualified_new(name)?;
        let temp = self.info.temp_schema();
        if temporary {
            if object_name_parts(name)?.len() > 1 && qualified.schema != temp {
                return Err(QuiverError::InvalidTableDefinition(
                    "cannot create temporary relation in non-temporary schema".into(),
                ));
            }
            qualified.schema = temp.clone();
        }
        if qualified.schema == temp && !self.catalog().schemas.contains_key(&temp) {
            let owner = self.current_role();
            let (_, ack) =
                self.db
                    .create_schema(self.current_txn().as_deref(), &temp, true, Some(&owner))?;
            ack.wait().await;
        }
        Ok(qualified)
    }

    /// What `ON COMMIT` asks of a new temporary table: with `DROP`, it goes
    /// when the open block commits (outside a block, at once).
    pub(super) async fn on_commit(
        &mut self,
        name: &QualifiedName,
        on_commit: Option<&OnCommit>,
    ) -> Result<()> {
        match on_commit {
            None | Some(OnCommit::PreserveRows) => Ok(()),
            Some(OnCommit::DeleteRows) => Err(not_supported("ON COMMIT DELETE ROWS")),
            Some(OnCommit::Drop) => match &mut self.txn {
                Some(open) => {
                    open.drop_at_commit.push(name.clone());
                    Ok(())
                }
                None => {
                    let (_, ack) = self.db.drop_relations(
                        None,
                        std::slice::from_ref(name),
                        RelationType::Table,
                        true,
                        true,
                    )?;
                    ack.wait().await;
                    Ok(())
                }
            },
        }
    }

    /// Drops the `ON COMMIT DROP` tables of `open`, in it.
    pub(super) fn drop_temporary_at_commit(&self, open: &OpenTransaction) -> Result<()> {
        if open.drop_at_commit.is_empty() {
            return Ok(());
        }
        // Already gone if a savepoint's rollback undid its creation.
        let (_, _in_the_transaction) = self.db.drop_relations(
            Some(&open.txn),
            &open.drop_at_commit,
            RelationType::Table,
            true,
            true,
        )?;
        Ok(())
    }

    /// Drops this session's temporary tables (and its temporary schema):
    /// when it ends, and for `DISCARD TEMP`. Nothing to wait for: no one
    /// else reads them, and a crash before the drop is logged leaves
    /// them to the next start to drop.
    pub(super) fn drop_temporary_tables(&self) {
        let temp = self.info.temp_schema();
        if !self.db.catalog().schemas.contains_key(&temp) {
            return;
        }
        if let Err(e) = self.db.drop_schema(None, &temp, true, true) {
            tracing::warn!("could not drop temporary schema {temp}: {e}");
        }
    }
}
