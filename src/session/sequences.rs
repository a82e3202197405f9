//! CREATE SEQUENCE and ALTER SEQUENCE, and the sequences of SERIAL and
//! identity columns.

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, Insert, SetExpr, Statement, TableObject,
};

use super::{Overriding, Session, StatementResult};
use crate::engine::roles::{self, AclObject};
use crate::engine::sequence::{SequenceDef, SequenceOptions, SequenceType};
use crate::engine::{CatalogState, QualifiedName, Table};
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::catalog::quote_ident;
use crate::sql::sequence_ddl::{options_altered, options_for_new, SeqOption, SequenceStatement};

/// PostgreSQL's limit on identifier length (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;

impl Session {
    pub(super) async fn sequence_statement(
        &mut self,
        statement: SequenceStatement,
    ) -> Result<StatementResult> {
        if statement.temporary {
            return Err(not_supported("CREATE TEMPORARY SEQUENCE"));
        }
        let name = match statement.alter {
            true => self.qualified(&statement.name)?,
            false => self.qualified_new(&statement.name)?,
        };
        if statement.alter {
            self.alter_sequence(name, &statement).await
        } else {
            self.create_sequence(name, &statement).await
        }
    }

    async fn create_sequence(
        &mut self,
        name: QualifiedName,
        statement: &SequenceStatement,
    ) -> Result<StatementResult> {
        let catalog = self.catalog();
        let identity = self.info.identity();
        let actor = identity.actor();
        let schema = AclObject::Schema(name.schema.clone());
        if catalog.schemas.contains_key(&name.schema)
            && catalog.privileges_on(actor, &schema) & roles::CREATE == 0
        {
            return Err(QuiverError::InsufficientPrivilege(format!(
                "permission denied for schema {}",
                name.schema
            )));
        }
        let options = options_for_new(SequenceType::Bigint, &statement.options);
        options.validate(&name.name)?;
        let owned_by = match owned_by_option(&statement.options) {
            Some(target) => owner_column(&catalog, &name, target)?,
            None => None,
        };
        let def = SequenceDef {
            id: self.db.allocate_table_id(),
            schema: name.schema.clone(),
            name: name.name.clone(),
            last_value: options.start,
            is_called: false,
            options,
            owned_by,
        };
        let (_, ack) = self.db.create_sequence(
            self.current_txn().as_deref(),
            def,
            statement.if_flag,
            Some(&self.current_role()),
        )?;
        ack.wait().await;
        Ok(StatementResult::command("CREATE SEQUENCE"))
    }

    async fn alter_sequence(
        &mut self,
        name: QualifiedName,
        statement: &SequenceStatement,
    ) -> Result<StatementResult> {
        let catalog = self.catalog();
        let Some(sequence) = catalog.sequence(&name).cloned() else {
            if catalog
                .schemas
                .get(&name.schema)
                .is_some_and(|s| s.has_relation(&name.name))
            {
                return Err(QuiverError::WrongObjectType(format!(
                    "\"{}\" is not a sequence",
                    name.name
                )));
            }
            if statement.if_flag {
                return Ok(StatementResult::command("ALTER SEQUENCE"));
            }
            return Err(QuiverError::UndefinedTable(name.name));
        };
        let identity = self.info.identity();
        if !catalog.owns(identity.actor(), &AclObject::relation(&name)) {
            return Err(QuiverError::InsufficientPrivilege(format!(
                "must be owner of sequence {}",
                name.name
            )));
        }
        let (options, restart) = options_altered(&sequence.options(), &statement.options);
        if let Some(value) = restart {
            check_restart(&options, value)?;
        }
        let owned_by = match owned_by_option(&statement.options) {
            Some(target) => owner_column(&catalog, &name, target)?,
            None => sequence.owned_by(),
        };
        let durable = self
            .db
            .alter_sequence(&name, &sequence, options, owned_by, restart)?;
        if let Some(durable) = durable {
            durable.await;
        }
        Ok(StatementResult::command("ALTER SEQUENCE"))
    }

    /// The sequence a SERIAL or identity column `column` of a new table
    /// `table` gets: named `<table>_<column>_seq` (shortened, and numbered
    /// when the name is taken, as PostgreSQL chooses), owned by the column.
    pub(super) fn column_sequence(
        &self,
        table: &QualifiedName,
        column: &str,
        data_type: SequenceType,
        given: &[SeqOption],
        taken: &[String],
    ) -> Result<SequenceDef> {
        let name = choose_name(
            &self.catalog(),
            &table.schema,
            (&table.name, column, "seq"),
            taken,
        );
        let options = options_for_new(data_type, given);
        options.validate(&name)?;
        Ok(SequenceDef {
            id: self.db.allocate_table_id(),
            schema: table.schema.clone(),
            name,
            last_value: options.start,
            is_called: false,
            options,
            owned_by: Some((table.name.clone(), column.to_string())),
        })
    }
}

impl Session {
    /// INSERT into a GENERATED ALWAYS identity column: only DEFAULT may
    /// be given for it (428C9), as PostgreSQL says without OVERRIDING
    /// SYSTEM VALUE. COPY writes the values it is given.
    pub(super) fn check_identity_insert(&self, insert: &Insert) -> Result<()> {
        if self.overriding.is_some() {
            return Ok(());
        }
        let TableObject::TableName(name) = &insert.table else {
            return Ok(());
        };
        match self.catalog().table(&self.qualified(name)?) {
            Some(table) => identity_insert(table, insert),
            None => Ok(()),
        }
    }
}

impl Session {
    /// INSERT ... OVERRIDING USER VALUE: the values given for identity
    /// columns are replaced by the columns' DEFAULT (the sequence's next
    /// value), as PostgreSQL ignores them.
    pub(super) async fn override_user_value(&self, insert: &mut Insert) -> Result<()> {
        if self.overriding != Some(Overriding::User) {
            return Ok(());
        }
        let TableObject::TableName(name) = &insert.table else {
            return Ok(());
        };
        let catalog = self.catalog();
        let Some(table) = catalog.table(&self.qualified(name)?) else {
            return Ok(());
        };
        let columns = super::plan::insert_columns(&insert.columns, &table.schema_ref())?;
        let is_identity = |c: &String| table.identity(c).is_some();
        if !columns.iter().any(is_identity) {
            return Ok(());
        }
        let Some(source) = insert.source.as_mut() else {
            return Ok(());
        };
        if let SetExpr::Values(values) = source.body.as_mut() {
            for row in &mut values.rows {
                for (value, column) in row.iter_mut().zip(&columns) {
                    if is_identity(column) {
                        *value = SqlExpr::Identifier(Ident::new("DEFAULT"));
                    }
                }
            }
            return Ok(());
        }
        // A query: its identity columns are replaced by their DEFAULT.
        let query = DfStatement::Statement(Box::new(Statement::Query(source.clone())));
        let width = Box::pin(self.plan(query)).await?.schema().fields().len();
        let names: Vec<String> = (1..=width).map(|i| format!("c{i}")).collect();
        let items: Vec<String> = columns
            .iter()
            .zip(&names)
            .map(|(column, name)| match is_identity(column) {
                true => table
                    .defaults_sql()
                    .iter()
                    .find(|(c, _)| c == column)
                    .map(|(_, sql)| super::ddl::regclass_as_name(sql).into_owned())
                    .unwrap_or_else(|| "NULL".into()),
                false => format!("quiver_overriding.{name}"),
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM ({source}) AS quiver_overriding({})",
            items.join(", "),
            names.join(", ")
        );
        match Session::parse(&sql)?.pop_front() {
            Some(DfStatement::Statement(s)) => match *s {
                Statement::Query(query) => *source = query,
                _ => return Err(QuiverError::Internal("OVERRIDING USER VALUE".into())),
            },
            _ => return Err(QuiverError::Internal("OVERRIDING USER VALUE".into())),
        }
        Ok(())
    }
}

fn identity_insert(table: &Table, insert: &Insert) -> Result<()> {
    if !table.identities().iter().any(|(_, always)| *always) {
        return Ok(());
    }
    let columns = super::plan::insert_columns(&insert.columns, &table.schema_ref())?;
    let values = match insert.source.as_deref().map(|q| q.body.as_ref()) {
        Some(SetExpr::Values(values)) => Some(&values.rows),
        _ => None,
    };
    for (position, column) in columns.iter().enumerate() {
        if table.identity(column) != Some(true) {
            continue;
        }
        let only_defaults = match values {
            Some(rows) => rows.iter().all(|row| {
                row.get(position)
                    .is_none_or(super::plan::is_default_keyword)
            }),
            // A query gives every column it lists a value.
            None => insert.source.is_none(),
        };
        if !only_defaults {
            return Err(QuiverError::GeneratedAlways {
                message: format!("cannot insert a non-DEFAULT value into column \"{column}\""),
                detail: format!(
                    "Column \"{column}\" is an identity column defined as GENERATED ALWAYS."
                ),
                hint: Some("Use OVERRIDING SYSTEM VALUE to override."),
            });
        }
    }
    Ok(())
}

/// UPDATE of a GENERATED ALWAYS identity column to anything but DEFAULT.
pub(super) fn identity_update_error(column: &str) -> QuiverError {
    QuiverError::GeneratedAlways {
        message: format!("column \"{column}\" can only be updated to DEFAULT"),
        detail: format!("Column \"{column}\" is an identity column defined as GENERATED ALWAYS."),
        hint: None,
    }
}

/// The DEFAULT of a column that takes its values from `sequence`, as
/// PostgreSQL shows it: `nextval('t_id_seq'::regclass)` (qualified
/// outside `public`).
pub(super) fn nextval_default(sequence: &SequenceDef) -> String {
    let name = if sequence.schema == crate::engine::DEFAULT_SCHEMA {
        quote_ident(&sequence.name)
    } else {
        format!(
            "{}.{}",
            quote_ident(&sequence.schema),
            quote_ident(&sequence.name)
        )
    };
    format!("nextval('{}'::regclass)", name.replace('\'', "''"))
}

/// `<table>_<column>_<label>` (`seq`, `idx`), within 63 characters,
/// numbered past names that are taken, as PostgreSQL chooses them.
pub(super) fn choose_name(
    catalog: &CatalogState,
    schema: &str,
    (table, column, label): (&str, &str, &str),
    taken: &[String],
) -> String {
    let exists = |name: &str| {
        taken.iter().any(|t| t == name)
            || name == table
            || catalog
                .schemas
                .get(schema)
                .is_some_and(|s| s.has_relation(name))
    };
    for n in 0.. {
        let suffix = if n == 0 {
            label.to_string()
        } else {
            format!("{label}{n}")
        };
        let (mut t, mut c) = (table.to_string(), column.to_string());
        // Shorten the longer part first, as PostgreSQL does.
        while t.len() + c.len() + suffix.len() + 2 > MAX_NAME {
            if t.len() >= c.len() {
                t.pop();
            } else {
                c.pop();
            }
        }
        let name = format!("{t}_{c}_{suffix}");
        if !exists(&name) {
            return name;
        }
    }
    unreachable!("some numbered name is free")
}

fn owned_by_option(options: &[SeqOption]) -> Option<&Option<Vec<String>>> {
    options.iter().rev().find_map(|o| match o {
        SeqOption::OwnedBy(target) => Some(target),
        _ => None,
    })
}

/// The column `OWNED BY` names: a column of a table in the sequence's
/// own schema (None for `OWNED BY NONE`).
fn owner_column(
    catalog: &CatalogState,
    sequence: &QualifiedName,
    target: &Option<Vec<String>>,
) -> Result<Option<(String, String)>> {
    let Some(parts) = target else {
        return Ok(None);
    };
    let (schema, table, column) = match parts.as_slice() {
        [table, column] => (sequence.schema.clone(), table.clone(), column.clone()),
        [schema, table, column] => (schema.clone(), table.clone(), column.clone()),
        _ => {
            return Err(QuiverError::InvalidStatement(
                "invalid OWNED BY option: specify OWNED BY table.column or OWNED BY NONE".into(),
            ))
        }
    };
    let table_name = QualifiedName::new(&schema, &table);
    let Some(found) = catalog.table(&table_name) else {
        return Err(QuiverError::UndefinedTable(table));
    };
    if schema != sequence.schema {
        return Err(QuiverError::NotInPrerequisiteState(
            "sequence must be in same schema as table it is linked to".into(),
        ));
    }
    if found.schema_ref().index_of(&column).is_err() {
        return Err(QuiverError::UndefinedColumnOf { column, table });
    }
    Ok(Some((table, column)))
}

fn check_restart(options: &SequenceOptions, value: i64) -> Result<()> {
    if value < options.min {
        return Err(QuiverError::InvalidParameterValue(format!(
            "RESTART value ({value}) cannot be less than MINVALUE ({})",
            options.min
        )));
    }
    if value > options.max {
        return Err(QuiverError::InvalidParameterValue(format!(
            "RESTART value ({value}) cannot be greater than MAXVALUE ({})",
            options.max
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_chosen_like_postgres() {
        let catalog = CatalogState::default();
        assert_eq!(
            choose_name(&catalog, "public", ("t", "id", "seq"), &[]),
            "t_id_seq"
        );
        assert_eq!(
            choose_name(&catalog, "public", ("t", "id", "seq"), &["t_id_seq".into()]),
            "t_id_seq1"
        );
        let long = "a".repeat(70);
        let name = choose_name(&catalog, "public", (&long, "id", "seq"), &[]);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_id_seq"));
    }

    #[test]
    fn defaults_name_the_sequence_as_postgres_shows_it() {
        let mut def = SequenceDef {
            id: 1,
            schema: "public".into(),
            name: "t_id_seq".into(),
            options: SequenceOptions::defaults(SequenceType::Integer, 1),
            owned_by: None,
            last_value: 1,
            is_called: false,
        };
        assert_eq!(nextval_default(&def), "nextval('t_id_seq'::regclass)");
        def.schema = "Sales".into();
        assert_eq!(
            nextval_default(&def),
            "nextval('\"Sales\".t_id_seq'::regclass)"
        );
    }
}
