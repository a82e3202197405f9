//! Prepared point lookups: `SELECT columns FROM t WHERE key = $1 [AND
//! key2 = $2]` on exactly the columns of a unique key or of an index. Found at Parse; each
//! Execute binds the parameters and probes the key instead of optimizing,
//! planning and running the query again, which is most of a lookup's time.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, Operator};

use super::{Session, StatementResult};
use crate::engine::table::is_exact_key_type;
use crate::engine::Table;
use crate::error::Result;

/// How a prepared statement's rows are found by key.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    table: Arc<Table>,
    /// Table column -> the parameter (0-based) it must equal.
    key: Vec<(usize, usize)>,
    /// Table columns of the result, in order.
    projection: Vec<usize>,
    /// The result's schema, as the planned statement reports it.
    schema: SchemaRef,
}

impl KeyLookup {
    /// The lookup a planned statement amounts to, if it is one:
    /// `Projection(columns) <- Filter(col = $n AND ...) <- TableScan` with
    /// the filter pinning exactly the columns of one unique key of a
    /// QuiverDB table, and nothing else.
    pub fn of(session: &Session, plan: &LogicalPlan, schema: SchemaRef) -> Option<KeyLookup> {
        let LogicalPlan::Projection(projection) = plan else {
            return None;
        };
        let LogicalPlan::Filter(filter) = projection.input.as_ref() else {
            return None;
        };
        let LogicalPlan::TableScan(scan) = filter.input.as_ref() else {
            return None;
        };
        if scan.fetch.is_some() || !scan.filters.is_empty() {
            return None;
        }
        let provider = source_as_provider(&scan.source).ok()?;
        let scanned = provider.downcast_ref::<Table>()?;
        let (_, table) = session.table_for_reference(&scan.table_name).ok()?;
        if table.id() != scanned.id() {
            return None;
        }
        let table_schema = table.schema_ref();
        let column_of = |expr: &Expr| match expr {
            Expr::Column(c)
                if c.relation
                    .as_ref()
                    .is_none_or(|r| r.table() == scan.table_name.table()) =>
            {
                table_schema.index_of(&c.name).ok()
            }
            _ => None,
        };
        let mut key = Vec::new();
        for conjunct in split_conjunction(&filter.predicate) {
            let Expr::BinaryExpr(binary) = conjunct else {
                return None;
            };
            if binary.op != Operator::Eq {
                return None;
            }
            let (column, placeholder) = match (binary.left.as_ref(), binary.right.as_ref()) {
                (Expr::Placeholder(p), other) | (other, Expr::Placeholder(p)) => {
                    (column_of(other)?, p)
                }
                _ => return None,
            };
            let n: usize = placeholder.id.strip_prefix('$')?.parse().ok()?;
            if n == 0 || !is_exact_key_type(table_schema.field(column)) {
                return None;
            }
            key.push((column, n - 1));
        }
        let mut pinned: Vec<usize> = key.iter().map(|(c, _)| *c).collect();
        pinned.sort_unstable();
        pinned.dedup();
        if pinned.len() != key.len() {
            return None;
        }
        // Exactly the columns of a key: the rows with that key are the
        // statement's rows (the filter is not applied again).
        let is_a_key = table.key_columns().into_iter().any(|mut columns| {
            columns.sort_unstable();
            columns == pinned
        });
        if !is_a_key {
            return None;
        }
        let projection = projection
            .expr
            .iter()
            .map(|e| match e {
                // The result schema carries the alias; the values are the column's.
                Expr::Alias(alias) => column_of(&alias.expr),
                e => column_of(e),
            })
            .collect::<Option<Vec<usize>>>()?;
        Some(KeyLookup {
            table,
            key,
            projection,
            schema,
        })
    }
}

impl Session {
    /// Runs a prepared key lookup with its parameters; None when the
    /// parameters do not fit the key as they are (the caller then runs
    /// the planned statement, which converts or reports them).
    pub(super) fn run_lookup(
        &self,
        lookup: &KeyLookup,
        params: Option<&ParamValues>,
    ) -> Result<Option<StatementResult>> {
        let Some(ParamValues::List(values)) = params else {
            return Ok(None);
        };
        let schema = lookup.table.schema_ref();
        let mut pinned = HashMap::with_capacity(lookup.key.len());
        for &(column, param) in &lookup.key {
            let Some(value) = values.get(param) else {
                return Ok(None);
            };
            let value = &value.value;
            let field = schema.field(column);
            let value = if value.data_type() == *field.data_type() {
                value.clone()
            } else if value.is_null() {
                ScalarValue::try_from(field.data_type())?
            } else {
                return Ok(None);
            };
            pinned.insert(column, value);
        }
        let version = match self.current_txn() {
            Some(txn) => txn.visible(&lookup.table),
            None => lookup.table.snapshot(),
        };
        let Some(rows) = lookup.table.lookup(&version, &pinned)? else {
            return Ok(None);
        };
        let batches = rows
            .iter()
            .map(|rows| {
                RecordBatch::try_new(
                    lookup.schema.clone(),
                    rows.project(&lookup.projection)?.columns().to_vec(),
                )
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(Some(StatementResult::Rows {
            schema: lookup.schema.clone(),
            batches,
            tag: "SELECT",
        }))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::ParamValues;

    use super::*;
    use crate::engine::Database;

    #[tokio::test]
    async fn only_statements_that_pin_a_whole_key_become_lookups() {
        let mut session = Session::new(Database::new());
        for r in session
            .execute_sql(
                "CREATE TABLE t (id BIGINT PRIMARY KEY, a INT, b INT, v TEXT, f DOUBLE PRECISION UNIQUE, UNIQUE (a, b), g INT);
                 INSERT INTO t VALUES (1, 1, 1, 'one', 1.0, 5), (2, 1, 2, 'two', 2.0, 5);
                 CREATE INDEX ON t (g); CREATE INDEX ON t (f, g)",
            )
            .await
        {
            r.unwrap();
        }
        for (sql, lookup) in [
            ("SELECT v, id FROM t WHERE id = $1", true),
            ("SELECT * FROM t WHERE $1 = id", true),
            ("SELECT v AS name, id AS key FROM t WHERE id = $1", true),
            ("SELECT id FROM t WHERE b = $2 AND a = $1", true),
            ("SELECT id FROM t WHERE a = $1", false),
            ("SELECT id FROM t WHERE id = $1 AND v = 'one'", false),
            ("SELECT id FROM t WHERE id > $1", false),
            ("SELECT id + 1 FROM t WHERE id = $1", false),
            ("SELECT id FROM t WHERE f = $1", false),
            ("SELECT id FROM t WHERE id = $1 LIMIT 1", false),
            // Exactly the columns of an index (of exact types).
            ("SELECT id FROM t WHERE g = $1", true),
            ("SELECT id FROM t WHERE g = $1 AND v = $2", false),
            ("SELECT id FROM t WHERE f = $1 AND g = $2", false),
        ] {
            let prepared = session.prepare(sql).await.unwrap();
            assert_eq!(prepared.lookup.is_some(), lookup, "{sql}");
        }
        let prepared = session
            .prepare("SELECT v, id FROM t WHERE id = $1")
            .await
            .unwrap();
        let params = ParamValues::List(vec![ScalarValue::Int64(Some(2)).into()]);
        match session
            .execute_prepared(&prepared, Some(params))
            .await
            .unwrap()
        {
            StatementResult::Rows { batches, .. } => {
                assert_eq!(batches.len(), 1);
                let v = batches[0]
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::StringArray>()
                    .unwrap();
                assert_eq!(v.value(0), "two");
            }
            _ => panic!("rows expected"),
        }
    }
}
