//! What kind of statement this is, decided once: its family in the
//! metrics, whether it may join the implicit transaction of a
//! multi-statement message, whether DataFusion plans it, whether it takes
//! the DML path, and what a role needs to run it.
//!
//! The match is the list of statements QuiverDB runs. A statement not in
//! it is [`Privilege::Unknown`]: denied to every role but superusers (and
//! refused by the dispatch with 0A000). A new statement kind is allowed
//! only once it is added here with the privilege it needs.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{CopyTarget, ObjectType, Statement};

use crate::metrics::Kind;

/// What a role needs to run a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Privilege {
    /// Nothing: it changes only the session's own state (settings,
    /// transaction control, prepared statements).
    Session,
    /// Privileges on the tables, views and schemas it names (`SELECT` on
    /// what it reads, `INSERT` on its target, ownership to alter or
    /// drop...): see `security.rs`.
    Objects,
    /// The statement's own code decides (roles and grants: who may do
    /// what depends on the role named).
    OwnCheck,
    /// Superusers only: it reads or writes server files, or writes the
    /// whole database.
    Superuser,
    /// Not a statement QuiverDB runs: denied.
    Unknown,
}

/// A statement's class: see the module comment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Class {
    pub kind: Kind,
    /// Queries and row changes may run in the implicit transaction of a
    /// multi-statement message; DDL, settings and transaction control
    /// may not.
    pub implicit_block: bool,
    /// DataFusion plans it (prepared statements keep the plan).
    pub planned: bool,
    /// UPDATE, DELETE, and INSERT with ON CONFLICT or RETURNING: they go
    /// through `dml.rs` rather than the plain INSERT path.
    pub dml: bool,
    pub privilege: Privilege,
}

impl Class {
    const fn new(kind: Kind, privilege: Privilege) -> Class {
        Class {
            kind,
            implicit_block: false,
            planned: false,
            dml: false,
            privilege,
        }
    }

    const fn in_block(mut self) -> Class {
        self.implicit_block = true;
        self
    }

    const fn planned(mut self) -> Class {
        self.planned = true;
        self
    }

    const fn dml(mut self) -> Class {
        self.dml = true;
        self
    }
}

/// The class of `statement`.
pub(super) fn classify(statement: &DfStatement) -> Class {
    match statement {
        DfStatement::Statement(s) => classify_sql(s),
        DfStatement::Explain(explain) => explained(classify(&explain.statement)),
        DfStatement::Reset(_) => Class::new(Kind::Utility, Privilege::Session),
        DfStatement::CreateExternalTable(_) => Class::new(Kind::Ddl, Privilege::Superuser),
        // DataFusion's `COPY ... TO 'file'`: not a statement we run.
        DfStatement::CopyTo(_) => Class::new(Kind::Copy, Privilege::Unknown),
    }
}

/// EXPLAIN needs what the statement it explains needs; DataFusion plans
/// it, and it changes nothing.
fn explained(inner: Class) -> Class {
    Class {
        kind: Kind::Utility,
        implicit_block: false,
        planned: true,
        dml: false,
        privilege: inner.privilege,
    }
}

fn classify_sql(s: &Statement) -> Class {
    use Kind::*;
    use Privilege::*;
    match s {
        Statement::Query(_) => Class::new(Select, Objects).in_block().planned(),
        Statement::Insert(insert) => {
            let class = Class::new(Insert, Objects).in_block();
            if insert.on.is_some() || insert.returning.is_some() {
                class.dml()
            } else {
                class.planned()
            }
        }
        Statement::Update(_) => Class::new(Update, Objects).in_block().dml(),
        Statement::Delete(_) => Class::new(Delete, Objects).in_block().dml(),
        Statement::Truncate(_) => Class::new(Ddl, Objects).in_block(),
        Statement::Explain { statement, .. } => explained(classify_sql(statement)),
        // To or from the client: table privileges; a server file:
        // superusers only.
        Statement::Copy { target, .. } => match target {
            CopyTarget::Stdin | CopyTarget::Stdout => Class::new(Copy, Objects),
            _ => Class::new(Copy, Superuser),
        },
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateSchema { .. }
        | Statement::AlterTable(_)
        | Statement::CreateIndex(_)
        | Statement::AlterIndex { .. }
        | Statement::Comment { .. } => Class::new(Ddl, Objects),
        Statement::Drop { object_type, .. } => match object_type {
            ObjectType::Table
            | ObjectType::View
            | ObjectType::Sequence
            | ObjectType::Schema
            | ObjectType::Index => Class::new(Ddl, Objects),
            ObjectType::Role => Class::new(Ddl, OwnCheck),
            _ => Class::new(Ddl, Unknown),
        },
        Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::Grant(_)
        | Statement::Revoke(_) => Class::new(Ddl, OwnCheck),
        Statement::Set(_)
        | Statement::ShowVariable { .. }
        | Statement::Reset(_)
        | Statement::Deallocate { .. }
        | Statement::Discard { .. }
        | Statement::Close { .. } => Class::new(Utility, Session),
        // They check the table exists and change nothing.
        Statement::Analyze(_) | Statement::Vacuum(_) => Class::new(Utility, Session),
        // Notifications are not transactional data: allowed in a block,
        // taking effect at its commit.
        Statement::LISTEN { .. } | Statement::UNLISTEN { .. } | Statement::NOTIFY { .. } => {
            Class::new(Utility, Session).in_block()
        }
        // A cursor's query needs what the query needs; its rows are read
        // by FETCH.
        Statement::Declare { .. } => Class::new(Select, Objects).in_block(),
        Statement::Fetch { into: None, .. } => Class::new(Select, Session).in_block(),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Class::new(Transaction, Session),
        _ => Class::new(Utility, Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(sql: &str) -> Class {
        // Sessions read COPY with the SQL parser, not DataFusion's.
        if crate::sql::copy_options::is_copy(sql) {
            return classify(&crate::sql::copy_options::parse_copy(sql).unwrap());
        }
        let mut statements = crate::sql::parse_statements(sql).unwrap();
        classify(&statements.pop_front().unwrap())
    }

    #[test]
    fn statements_we_do_not_know_are_denied() {
        for sql in [
            "CREATE SEQUENCE s",
            "CREATE EXTENSION hstore",
            "DROP TYPE i",
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
        ] {
            assert_eq!(class(sql).privilege, Privilege::Unknown, "{sql}");
        }
    }

    #[test]
    fn explain_needs_what_it_explains() {
        assert_eq!(
            class("EXPLAIN SELECT * FROM t").privilege,
            Privilege::Objects
        );
        assert!(class("EXPLAIN SELECT * FROM t").planned);
        assert!(!class("EXPLAIN SELECT * FROM t").implicit_block);
        assert_eq!(class("EXPLAIN DROP TYPE i").privilege, Privilege::Unknown);
    }

    #[test]
    fn row_changes_join_the_implicit_block_and_ddl_does_not() {
        assert!(class("INSERT INTO t VALUES (1)").implicit_block);
        assert!(class("INSERT INTO t VALUES (1)").planned);
        assert!(class("INSERT INTO t VALUES (1) RETURNING a").dml);
        assert!(class("DELETE FROM t").dml);
        assert!(!class("CREATE TABLE t (a int)").implicit_block);
        assert!(!class("SET search_path = public").implicit_block);
        assert_eq!(class("COPY t TO '/tmp/x'").privilege, Privilege::Superuser);
        assert_eq!(class("COPY t TO STDOUT").privilege, Privilege::Objects);
    }
}
