//! COMMENT ON { TABLE | VIEW | SEQUENCE | INDEX | COLUMN | SCHEMA } name
//! IS 'text' | NULL.

use datafusion::sql::sqlparser::ast::{CommentObject, ObjectName};

use super::{object_name_parts, Session, StatementResult};
use crate::engine::comments::CommentTarget;
use crate::engine::QualifiedName;
use crate::error::{not_supported, QuiverError, Result};

impl Session {
    pub(super) async fn comment(
        &mut self,
        object_type: CommentObject,
        name: &ObjectName,
        comment: Option<String>,
    ) -> Result<StatementResult> {
        let target = self.comment_target(object_type, name)?;
        let (_, ack) = self
            .db
            .set_comment(self.current_txn().as_deref(), target, comment)?;
        ack.wait().await;
        Ok(StatementResult::command("COMMENT"))
    }

    /// The object a COMMENT ON names, which must exist.
    pub(super) fn comment_target(
        &self,
        object_type: CommentObject,
        name: &ObjectName,
    ) -> Result<CommentTarget> {
        let catalog = self.catalog();
        let relation = |want: &str| -> Result<CommentTarget> {
            let qualified = self.qualified(name)?;
            let kind = if catalog.table(&qualified).is_some() {
                "table"
            } else if catalog.view(&qualified).is_some() {
                "view"
            } else if catalog.sequence(&qualified).is_some() {
                "sequence"
            } else {
                return Err(QuiverError::UndefinedTable(qualified.name));
            };
            if kind != want {
                return Err(QuiverError::WrongObjectType(format!(
                    "\"{}\" is not a {want}",
                    qualified.name
                )));
            }
            Ok(CommentTarget::relation(&qualified))
        };
        match object_type {
            CommentObject::Table => relation("table"),
            CommentObject::View => relation("view"),
            CommentObject::Sequence => relation("sequence"),
            CommentObject::Index => {
                let (table, index) = self.find_index(name)?.ok_or_else(|| {
                    let index = object_name_parts(name)
                        .ok()
                        .and_then(|mut p| p.pop())
                        .unwrap_or_default();
                    QuiverError::UndefinedTable(index)
                })?;
                Ok(CommentTarget::Index {
                    schema: table.schema,
                    name: index,
                })
            }
            CommentObject::Column => {
                let mut parts = object_name_parts(name)?;
                let column = parts.pop().unwrap_or_default();
                let table = match parts.len() {
                    1 => self.qualified_parts(&parts[0], None),
                    2 => self.qualified_parts(&parts[1], Some(&parts[0])),
                    _ => {
                        return Err(QuiverError::Syntax(format!(
                            "column name must be qualified: \"{name}\""
                        )))
                    }
                };
                let schema = if let Some(t) = catalog.table(&table) {
                    t.schema_ref()
                } else if let Some(v) = catalog.view(&table) {
                    v.schema.clone()
                } else {
                    return Err(QuiverError::UndefinedTable(table.name));
                };
                if schema.index_of(&column).is_err() {
                    return Err(QuiverError::UndefinedColumnOf {
                        column,
                        table: table.name,
                    });
                }
                Ok(CommentTarget::column(&table, &column))
            }
            CommentObject::Schema => {
                let schema = object_name_parts(name)?.pop().unwrap_or_default();
                if !catalog.schemas.contains_key(&schema) {
                    return Err(QuiverError::UndefinedSchema(schema));
                }
                Ok(CommentTarget::Schema { name: schema })
            }
            other => Err(not_supported(format!("COMMENT ON {other}"))),
        }
    }

    fn qualified_parts(&self, name: &str, schema: Option<&String>) -> QualifiedName {
        match schema {
            Some(schema) => QualifiedName::new(schema, name),
            None => QualifiedName::new(self.schema_of(name), name),
        }
    }
}
