//! COMMENT ON: descriptions of tables, views, sequences, indexes, columns
//! and schemas, kept in the catalog beside what they describe.

use serde::{Deserialize, Serialize};

use super::catalog::{CatalogState, QualifiedName};

/// What a comment describes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum CommentTarget {
    /// A table, view or sequence.
    Relation {
        schema: String,
        name: String,
    },
    Index {
        schema: String,
        name: String,
    },
    Column {
        schema: String,
        table: String,
        column: String,
    },
    Schema {
        name: String,
    },
}

impl CommentTarget {
    pub fn relation(name: &QualifiedName) -> CommentTarget {
        CommentTarget::Relation {
            schema: name.schema.clone(),
            name: name.name.clone(),
        }
    }

    pub fn column(table: &QualifiedName, column: &str) -> CommentTarget {
        CommentTarget::Column {
            schema: table.schema.clone(),
            table: table.name.clone(),
            column: column.to_string(),
        }
    }

    /// Whether the comment is on `table` or one of its columns.
    fn of_relation(&self, table: &QualifiedName) -> bool {
        match self {
            CommentTarget::Relation { schema, name } => {
                *schema == table.schema && *name == table.name
            }
            CommentTarget::Column {
                schema, table: t, ..
            } => *schema == table.schema && *t == table.name,
            _ => false,
        }
    }

    fn in_schema(&self, wanted: &str) -> bool {
        match self {
            CommentTarget::Relation { schema, .. }
            | CommentTarget::Index { schema, .. }
            | CommentTarget::Column { schema, .. } => schema == wanted,
            CommentTarget::Schema { name } => name == wanted,
        }
    }
}

impl CatalogState {
    pub fn comment(&self, target: &CommentTarget) -> Option<&String> {
        self.comments.get(target)
    }

    pub(super) fn set_comment(&mut self, target: CommentTarget, comment: Option<String>) {
        match comment {
            Some(text) => {
                self.comments.insert(target, text);
            }
            None => {
                self.comments.remove(&target);
            }
        }
    }

    /// A relation was dropped: its comments (and its columns') go.
    pub(super) fn forget_comments(&mut self, table: &QualifiedName) {
        self.comments.retain(|target, _| !target.of_relation(table));
    }

    /// Indexes were dropped (with their table, or by ALTER TABLE, DROP
    /// INDEX): the comments on indexes that no longer exist go.
    pub(super) fn forget_dropped_index_comments(&mut self) {
        let schemas = &self.schemas;
        self.comments.retain(|target, _| match target {
            CommentTarget::Index { schema, name } => schemas
                .get(schema)
                .is_some_and(|s| s.index_table(name).is_some()),
            _ => true,
        });
    }

    pub(super) fn forget_schema_comments(&mut self, schema: &str) {
        self.comments.retain(|target, _| !target.in_schema(schema));
    }

    /// A relation was renamed: its comments follow.
    pub(super) fn rename_comments(&mut self, name: &QualifiedName, new_name: &QualifiedName) {
        if name == new_name {
            return;
        }
        let moved: Vec<(CommentTarget, String)> = self
            .comments
            .iter()
            .filter(|(target, _)| target.of_relation(name))
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect();
        for (target, text) in moved {
            self.comments.remove(&target);
            let renamed = match target {
                CommentTarget::Column { column, .. } => CommentTarget::column(new_name, &column),
                _ => CommentTarget::relation(new_name),
            };
            self.comments.insert(renamed, text);
        }
    }
}
