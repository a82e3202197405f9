//! FOREIGN KEY clauses of CREATE TABLE and ALTER TABLE turned into
//! definitions the engine keeps and enforces, SET CONSTRAINTS, and the
//! implicit transaction that writes to a table with foreign keys run in.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::sql::sqlparser::ast::{
    ConstraintReferenceMatchKind, DeferrableInitial, ForeignKeyConstraint, ReferentialAction,
};

use super::{normalize_ident, Session, StatementResult};
use crate::engine::foreign::{FkAction, ForeignKeyDef};
use crate::engine::{QualifiedName, Table};
use crate::error::{not_supported, QuiverError, Result};

/// The table a foreign key is declared on, as the statement defines it.
pub(super) struct Referencing<'a> {
    pub name: &'a QualifiedName,
    pub schema: &'a Schema,
    /// Its primary key columns (for a reference to itself without columns).
    pub primary_key: Option<Vec<String>>,
}

impl Session {
    /// The definition of one FOREIGN KEY clause: `columns` of `table`
    /// (given by the clause, or the column it is declared on) referencing
    /// another table's key, or the table's own. `taken` are constraint
    /// names the table already uses.
    pub(super) fn foreign_key_def(
        &self,
        table: &Referencing<'_>,
        columns: Vec<String>,
        clause: &ForeignKeyConstraint,
        taken: &[String],
    ) -> Result<ForeignKeyDef> {
        if matches!(
            clause.match_kind,
            Some(ConstraintReferenceMatchKind::Full | ConstraintReferenceMatchKind::Partial)
        ) {
            return Err(not_supported("MATCH FULL and MATCH PARTIAL foreign keys"));
        }
        let parent = self.qualified(&clause.foreign_table)?;
        let own = &parent == table.name;
        let catalog = self.catalog();
        let parent_table = if own {
            None
        } else {
            Some(
                catalog
                    .table(&parent)
                    .cloned()
                    .ok_or_else(|| QuiverError::UndefinedTable(parent.name.clone()))?,
            )
        };
        let ref_columns: Vec<String> = if clause.referred_columns.is_empty() {
            let primary = match &parent_table {
                Some(t) => primary_key(t),
                None => table.primary_key.clone(),
            };
            primary.ok_or_else(|| {
                QuiverError::InvalidForeignKey(format!(
                    "there is no primary key for referenced table \"{}\"",
                    parent.name
                ))
            })?
        } else {
            clause
                .referred_columns
                .iter()
                .map(normalize_ident)
                .collect()
        };
        if let Some(parent) = &parent_table {
            if !crate::engine::foreign::has_key(parent, &ref_columns) {
                return Err(QuiverError::InvalidForeignKey(format!(
                    "there is no unique constraint matching given keys for referenced table \"{}\"",
                    parent.name()
                )));
            }
        }
        if ref_columns.len() != columns.len() {
            return Err(QuiverError::InvalidForeignKey(
                "number of referencing and referenced columns for foreign key disagree".into(),
            ));
        }
        let name = match &clause.name {
            Some(name) => normalize_ident(name),
            None => {
                let base = format!("{}_{}_fkey", table.name.name, columns.join("_"));
                let mut name = base.clone();
                let mut n = 0;
                while taken.contains(&name) {
                    n += 1;
                    name = format!("{base}{n}");
                }
                name
            }
        };
        let parent_schema = match &parent_table {
            Some(t) => t.schema_ref(),
            None => Arc::new(table.schema.clone()),
        };
        for (child, referenced) in columns.iter().zip(&ref_columns) {
            let child_type = table
                .schema
                .field_with_name(child)
                .map_err(|_| QuiverError::UndefinedColumn(child.clone()))?
                .data_type();
            let parent_field = parent_schema
                .field_with_name(referenced)
                .map_err(|_| QuiverError::UndefinedColumn(referenced.clone()))?;
            if !comparable(child_type, parent_field.data_type()) {
                return Err(QuiverError::DatatypeMismatch(format!(
                    "foreign key constraint \"{name}\" cannot be implemented: key columns \"{child}\" and \"{referenced}\" are of incompatible types: {} and {}",
                    crate::engine::types::display_type(table.schema.field_with_name(child).expect("checked")),
                    crate::engine::types::display_type(parent_field),
                )));
            }
        }
        let action = |a: &Option<ReferentialAction>| match a {
            None | Some(ReferentialAction::NoAction) => FkAction::NoAction,
            Some(ReferentialAction::Restrict) => FkAction::Restrict,
            Some(ReferentialAction::Cascade) => FkAction::Cascade,
            Some(ReferentialAction::SetNull) => FkAction::SetNull,
            Some(ReferentialAction::SetDefault) => FkAction::SetDefault,
        };
        let on_update = action(&clause.on_update);
        let characteristics = clause.characteristics.as_ref();
        let initially_deferred = characteristics
            .and_then(|c| c.initially)
            .is_some_and(|i| i == DeferrableInitial::Deferred);
        let deferrable = characteristics
            .and_then(|c| c.deferrable)
            .unwrap_or(initially_deferred);
        if initially_deferred && !deferrable {
            return Err(QuiverError::Syntax(
                "constraint declared INITIALLY DEFERRED must be DEFERRABLE".into(),
            ));
        }
        Ok(ForeignKeyDef {
            name,
            schema: table.name.schema.clone(),
            table: table.name.name.clone(),
            columns,
            ref_schema: parent.schema,
            ref_table: parent.name,
            ref_columns,
            on_delete: action(&clause.on_delete),
            on_update,
            deferrable,
            initially_deferred,
        })
    }

    /// Whether writes to `table` must run in a transaction (foreign keys
    /// reference it or from it).
    pub(super) fn has_foreign_keys(&self, table: &Table) -> bool {
        let catalog = self.catalog();
        !catalog.foreign_keys.is_empty()
            && catalog
                .name_of(table)
                .is_some_and(|name| catalog.has_foreign_keys(&name))
    }

    /// Whether an UPDATE of `table` must keep its new rows in the order of
    /// the rows they replace (a foreign key cascades its key changes).
    pub(super) fn cascades_updates(&self, table: &Table) -> bool {
        let catalog = self.catalog();
        catalog.foreign_keys.iter().any(|fk| {
            fk.on_update == FkAction::Cascade
                && catalog
                    .table(&fk.parent())
                    .is_some_and(|t| std::ptr::eq(t.as_ref(), table))
        })
    }

    /// `SET CONSTRAINTS { ALL | name [, ...] } { DEFERRED | IMMEDIATE }`.
    pub(super) fn set_constraints(
        &mut self,
        names: Option<Vec<String>>,
        deferred: bool,
    ) -> Result<StatementResult> {
        let Some(txn) = self.current_txn() else {
            // Outside a block it lasts until the end of the statement:
            // nothing to do, as in PostgreSQL (which warns).
            return Ok(StatementResult::command("SET CONSTRAINTS"));
        };
        let catalog = self.catalog();
        if let Some(names) = &names {
            for name in names {
                let fk = catalog.foreign_keys.iter().find(|fk| &fk.name == name);
                match fk {
                    None => {
                        return Err(QuiverError::UndefinedObject(format!(
                            "constraint \"{name}\" does not exist"
                        )))
                    }
                    Some(fk) if !fk.deferrable => {
                        return Err(QuiverError::WrongObjectType(format!(
                            "constraint \"{name}\" is not deferrable"
                        )))
                    }
                    Some(_) => {}
                }
            }
        }
        if !deferred {
            self.db.check_deferred(&txn, names.as_deref())?;
        }
        txn.set_constraint_mode(names.as_deref(), deferred);
        Ok(StatementResult::command("SET CONSTRAINTS"))
    }
}

/// A table's primary key columns.
fn primary_key(table: &Table) -> Option<Vec<String>> {
    let schema = table.schema_ref();
    table
        .unique_constraints()
        .into_iter()
        .find(|c| c.primary)
        .map(|c| {
            c.columns
                .iter()
                .map(|&i| schema.field(i).name().clone())
                .collect()
        })
}

/// Whether values of the two types can be compared as keys: numbers with
/// numbers, text with text, otherwise the same type.
fn comparable(a: &DataType, b: &DataType) -> bool {
    let numeric = |t: &DataType| t.is_integer() || t.is_floating() || t.is_decimal();
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    (numeric(a) && numeric(b)) || (text(a) && text(b)) || a == b
}

/// `SET CONSTRAINTS ...`: the names (None for ALL) and whether DEFERRED,
/// when `sql` is that statement.
pub(super) fn parse_set_constraints(sql: &str) -> Option<Result<(Option<Vec<String>>, bool)>> {
    let words: Vec<&str> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    if words.len() < 4
        || !words[0].eq_ignore_ascii_case("set")
        || !words[1].eq_ignore_ascii_case("constraints")
    {
        return None;
    }
    let mode = words[words.len() - 1];
    let deferred = if mode.eq_ignore_ascii_case("deferred") {
        true
    } else if mode.eq_ignore_ascii_case("immediate") {
        false
    } else {
        return Some(Err(QuiverError::Syntax(format!(
            "syntax error at or near \"{mode}\""
        ))));
    };
    let list = words[2..words.len() - 1].join(" ");
    if list.eq_ignore_ascii_case("all") {
        return Some(Ok((None, deferred)));
    }
    let names = list
        .split(',')
        .map(|n| {
            let n = n.trim();
            let n = n.rsplit('.').next().unwrap_or(n);
            match n.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => n.to_lowercase(),
            }
        })
        .collect();
    Some(Ok((Some(names), deferred)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_constraints_is_read() {
        assert!(parse_set_constraints("SET search_path TO x").is_none());
        let (names, deferred) = parse_set_constraints("SET CONSTRAINTS ALL DEFERRED")
            .unwrap()
            .unwrap();
        assert!(names.is_none() && deferred);
        let (names, deferred) =
            parse_set_constraints(r#"SET CONSTRAINTS "a_B_fk", public.c IMMEDIATE;"#)
                .unwrap()
                .unwrap();
        assert_eq!(names.unwrap(), ["a_B_fk", "c"]);
        assert!(!deferred);
    }
}
