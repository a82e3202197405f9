//! Where a result column comes from: the table and column a plain column
//! reference reads, reported in RowDescription as Postgres does (pgjdbc
//! looks them up for `ResultSetMetaData.isNullable` and
//! `getBaseTableName`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::logical_expr::{
    Cast, Distinct, Expr, ExprSchemable, JoinType, LogicalPlan, TryCast,
};

use crate::engine::types::PG_TYPE_KEY;
use crate::engine::{CatalogState, QualifiedName};
use crate::sql::types::{
    SOURCE_COLUMN_KEY, SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY, TYPMOD_UNKNOWN_KEY,
};

/// `schema` with each column that reads a table column directly marked
/// with that table's schema and name and the column's number.
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
            let mut metadata = field.metadata().clone();
            if let Some((name, number)) = source {
                metadata.insert(SOURCE_SCHEMA_KEY.into(), name.schema);
                metadata.insert(SOURCE_TABLE_KEY.into(), name.name);
                metadata.insert(SOURCE_COLUMN_KEY.into(), number.to_string());
            }
            if matches!(field.data_type(), DataType::Decimal128(..)) && !typmod_known(plan, i) {
                metadata.insert(TYPMOD_UNKNOWN_KEY.into(), "true".into());
            }
            if !metadata.contains_key(PG_TYPE_KEY) {
                if let Some(tag) = case_type(plan, i) {
                    metadata.insert(PG_TYPE_KEY.into(), tag);
                }
            }
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The table and column that output column `index` of `plan` reads, when
/// it is a column passed through unchanged.
fn trace(plan: &LogicalPlan, index: usize) -> Option<(TableReference, String)> {
    if let Some(input) = same_columns_input(plan) {
        return trace(input, index);
    }
    match plan {
        LogicalPlan::Projection(p) => {
            let Expr::Column(column) = unaliased(p.expr.get(index)?) else {
                return None;
            };
            let at = p.input.schema().index_of_column(column).ok()?;
            trace(&p.input, at)
        }
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

/// Whether PostgreSQL would know the precision and scale of numeric output
/// column `index` of the (not yet analyzed) `plan`: a table column, an
/// explicit cast to `numeric(p, s)`, or a UNION of such columns of one
/// type. A computed numeric (`sum(n)`, `n + 1`, a literal) has none.
fn typmod_known(plan: &LogicalPlan, index: usize) -> bool {
    if let Some(input) = same_columns_input(plan) {
        return typmod_known(input, index);
    }
    match plan {
        LogicalPlan::Projection(p) => p
            .expr
            .get(index)
            .is_some_and(|expr| expr_typmod_known(expr, &p.input)),
        LogicalPlan::Union(u) => {
            let types: Vec<_> = u
                .inputs
                .iter()
                .map(|input| {
                    input
                        .schema()
                        .fields()
                        .get(index)
                        .map(|f| f.data_type().clone())
                })
                .collect();
            types.windows(2).all(|w| w[0] == w[1])
                && u.inputs.iter().all(|input| typmod_known(input, index))
        }
        _ => trace(plan, index).is_some(),
    }
}

/// The PostgreSQL type of output column `index` when it is a CASE whose
/// branches are all of one tagged type or NULL (`CASE WHEN ... THEN
/// json_build_object(...) END` is json, as in PostgreSQL; DataFusion keeps
/// only the Arrow type).
fn case_type(plan: &LogicalPlan, index: usize) -> Option<String> {
    if let Some(input) = same_columns_input(plan) {
        return case_type(input, index);
    }
    let LogicalPlan::Projection(p) = plan else {
        return None;
    };
    let case = match unaliased(p.expr.get(index)?) {
        Expr::Case(case) => case,
        Expr::Column(column) => {
            let at = p.input.schema().index_of_column(column).ok()?;
            return case_type(&p.input, at);
        }
        _ => return None,
    };
    let branches = case
        .when_then_expr
        .iter()
        .map(|(_, then)| then.as_ref())
        .chain(case.else_expr.as_deref());
    let mut tag: Option<String> = None;
    for branch in branches {
        if matches!(branch, Expr::Literal(v, _) if v.is_null()) {
            continue;
        }
        let (_, field) = branch.to_field(p.input.schema()).ok()?;
        let branch_tag = field.metadata().get(PG_TYPE_KEY)?.clone();
        if tag.as_ref().is_some_and(|t| *t != branch_tag) {
            return None;
        }
        tag = Some(branch_tag);
    }
    tag
}

/// The input of a node whose output columns are its input's, unchanged.
fn same_columns_input(plan: &LogicalPlan) -> Option<&LogicalPlan> {
    match plan {
        LogicalPlan::Filter(f) => Some(&f.input),
        LogicalPlan::Sort(s) => Some(&s.input),
        LogicalPlan::Limit(l) => Some(&l.input),
        LogicalPlan::Distinct(Distinct::All(input)) => Some(input),
        LogicalPlan::SubqueryAlias(s) => Some(&s.input),
        _ => None,
    }
}

fn unaliased(mut expr: &Expr) -> &Expr {
    while let Expr::Alias(alias) = expr {
        expr = &alias.expr;
    }
    expr
}

/// [`typmod_known`] for an expression over `input`'s columns.
fn expr_typmod_known(expr: &Expr, input: &LogicalPlan) -> bool {
    let alike = |exprs: &[&Expr]| {
        let types: Vec<_> = exprs
            .iter()
            .map(|e| e.get_type(input.schema()).ok())
            .collect();
        !exprs.is_empty()
            && types.windows(2).all(|w| w[0] == w[1])
            && exprs.iter().all(|e| expr_typmod_known(e, input))
    };
    match unaliased(expr) {
        // Coercions are added later, by the analyzer: a cast here is one
        // the query wrote. A bare `numeric` is planned as (38, 10) and has
        // no typmod in PostgreSQL.
        Expr::Cast(Cast { field, .. }) | Expr::TryCast(TryCast { field, .. }) => {
            matches!(field.data_type(), DataType::Decimal128(p, s) if (*p, *s) != (38, 10))
        }
        Expr::Column(column) => match input.schema().index_of_column(column) {
            Ok(at) => typmod_known(input, at),
            Err(_) => false,
        },
        // CASE and COALESCE keep a typmod all their branches share.
        Expr::Case(case) => {
            let mut branches: Vec<&Expr> = case
                .when_then_expr
                .iter()
                .map(|(_, t)| t.as_ref())
                .collect();
            match &case.else_expr {
                Some(e) => branches.push(e),
                None => return false,
            }
            alike(&branches)
        }
        Expr::ScalarFunction(f) if f.name() == "coalesce" => {
            alike(&f.args.iter().collect::<Vec<_>>())
        }
        _ => false,
    }
}

/// A scanned table column as (table oid, column number), for base tables.
fn resolve(
    table: &TableReference,
    column: &str,
    catalog: &CatalogState,
    default_schema: &str,
) -> Option<(QualifiedName, i16)> {
    let schema = table.schema().unwrap_or(default_schema);
    let name = QualifiedName::new(schema, table.table());
    let found = catalog.table(&name)?;
    let number = found.schema_ref().index_of(column).ok()? + 1;
    Some((name, number as i16))
}
