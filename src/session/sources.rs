//! Where a result column comes from: the table and column a plain column
//! reference reads, reported in RowDescription as Postgres does (pgjdbc
//! looks them up for `ResultSetMetaData.isNullable` and
//! `getBaseTableName`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};

use crate::engine::{CatalogState, QualifiedName};
use crate::pg::catalog::relation_oid;
use crate::pg::types::{SOURCE_COLUMN_KEY, SOURCE_TABLE_KEY};

/// `schema` with each column that reads a table column directly marked
/// with that table's oid and the column's number.
pub fn annotate(
    plan: &LogicalPlan,
    schema: SchemaRef,
    catalog: &CatalogState,
    default_schema: &str,
) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let source = trace(plan, i)
                .and_then(|(table, column)| resolve(&table, &column, catalog, default_schema));
            match source {
                Some((oid, attnum)) => {
                    let mut metadata = field.metadata().clone();
                    metadata.insert(SOURCE_TABLE_KEY.into(), oid.to_string());
                    metadata.insert(SOURCE_COLUMN_KEY.into(), attnum.to_string());
                    field.as_ref().clone().with_metadata(metadata)
                }
                None => field.as_ref().clone(),
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The table and column that output column `index` of `plan` reads, when
/// it is a column passed through unchanged.
fn trace(plan: &LogicalPlan, index: usize) -> Option<(TableReference, String)> {
    match plan {
        LogicalPlan::Projection(p) => {
            let mut expr = p.expr.get(index)?;
            while let Expr::Alias(alias) = expr {
                expr = &alias.expr;
            }
            let Expr::Column(column) = expr else {
                return None;
            };
            let at = p.input.schema().index_of_column(column).ok()?;
            trace(&p.input, at)
        }
        LogicalPlan::Filter(f) => trace(&f.input, index),
        LogicalPlan::Sort(s) => trace(&s.input, index),
        LogicalPlan::Limit(l) => trace(&l.input, index),
        LogicalPlan::Distinct(Distinct::All(input)) => trace(input, index),
        LogicalPlan::SubqueryAlias(s) => trace(&s.input, index),
        LogicalPlan::Join(j) => match j.join_type {
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                let left = j.left.schema().fields().len();
                if index < left {
                    trace(&j.left, index)
                } else {
                    trace(&j.right, index - left)
                }
            }
            JoinType::LeftSemi | JoinType::LeftAnti => trace(&j.left, index),
            JoinType::RightSemi | JoinType::RightAnti => trace(&j.right, index),
            _ => None,
        },
        LogicalPlan::TableScan(scan) => {
            let field = scan.projected_schema.fields().get(index)?;
            Some((scan.table_name.clone(), field.name().clone()))
        }
        _ => None,
    }
}

/// A scanned table column as (table oid, column number), for base tables.
fn resolve(
    table: &TableReference,
    column: &str,
    catalog: &CatalogState,
    default_schema: &str,
) -> Option<(i32, i16)> {
    let schema = table.schema().unwrap_or(default_schema);
    let name = QualifiedName::new(schema, table.table());
    let found = catalog.table(&name)?;
    let attnum = found.schema_ref().index_of(column).ok()? + 1;
    Some((relation_oid(schema, table.table()), attnum as i16))
}
