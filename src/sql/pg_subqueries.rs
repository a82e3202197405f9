//! Correlated subqueries where PostgreSQL runs them and DataFusion's
//! analyzer refuses them:
//!
//! - a scalar subquery that is not an aggregate (`(SELECT x.b FROM t x
//!   WHERE x.a = t.a + 1)`): PostgreSQL runs it and fails with `21000`
//!   only when it returns more than one row for some outer row. The
//!   subquery gathers its rows with `array_agg`, which makes it an
//!   aggregate DataFusion (or the SubPlan of `sub_plans.rs`) runs, and the
//!   outer expression reads the one value with `pg_single_value`: NULL
//!   for no row, the value for one, `21000` for more (checked where an
//!   outer row reads it, as PostgreSQL checks it);
//! - a subquery in `ORDER BY`: it becomes a column computed beside the
//!   rows (a projection, where subqueries are allowed), the sort reads
//!   that column, and a projection above drops it again.
//!
//! And a scalar subquery is NULL when it returns no row, whatever its
//! column: DataFusion took the subquery column's nullability for the
//! subquery's, so `(SELECT id FROM t WHERE ...) IS NULL` over a NOT NULL
//! `id` was simplified to false (a wrong answer), and `coalesce` of one
//! failed at run time. Its column is made nullable (`pg_nullable`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Column;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, Projection, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Sort, SortExpr, Subquery, TypeSignature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::QuiverError;

/// The analyzer rule (runs last, before DataFusion checks the plan).
#[derive(Debug, Default)]
pub struct Subqueries;

impl AnalyzerRule for Subqueries {
    fn name(&self) -> &str {
        "pg_subqueries"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                let node = node.map_expressions(|expr| {
                    expr.transform_up(|e| match e {
                        Expr::ScalarSubquery(subquery) if needs_single_row(&subquery) => {
                            Ok(Transformed::yes(single_value(subquery)?))
                        }
                        Expr::ScalarSubquery(subquery)
                            if !subquery.subquery.schema().field(0).is_nullable() =>
                        {
                            Ok(Transformed::yes(Expr::ScalarSubquery(nullable(subquery)?)))
                        }
                        other => Ok(Transformed::no(other)),
                    })
                })?;
                // The schema again: a subquery's column may be nullable now.
                let node = match node.transformed {
                    true => node.map_data(|plan| plan.recompute_schema())?,
                    false => node,
                };
                node.transform_data(sort_by_subqueries)
            })?
            .data)
    }
}

/// A correlated scalar subquery DataFusion would refuse as possibly
/// returning several rows: one that is not, under projections, filters
/// and aliases, an aggregate or a `LIMIT 1`.
fn needs_single_row(subquery: &Subquery) -> bool {
    if subquery.outer_ref_columns.is_empty() {
        return false;
    }
    let mut plan = subquery.subquery.as_ref();
    loop {
        match plan {
            LogicalPlan::Projection(p) => plan = &p.input,
            LogicalPlan::Filter(f) => plan = &f.input,
            LogicalPlan::SubqueryAlias(a) => plan = &a.input,
            LogicalPlan::Sort(s) => plan = &s.input,
            LogicalPlan::Aggregate(_) => return false,
            LogicalPlan::Limit(limit) => {
                return !matches!(
                    limit.get_fetch_type(),
                    Ok(datafusion::logical_expr::logical_plan::FetchType::Literal(
                        Some(0 | 1)
                    ))
                )
            }
            _ => return true,
        }
    }
}

/// `pg_single_value((SELECT array_agg(c) FROM ...))` for the subquery
/// `(SELECT c FROM ...)`.
fn single_value(mut subquery: Subquery) -> Result<Expr> {
    let plan = subquery.subquery.as_ref().clone();
    let field = plan.schema().field(0).clone();
    let (qualifier, _) = plan.schema().qualified_field(0);
    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    // Not the column's own name: when the subquery becomes a join, an
    // unqualified name shared with an outer column would be ambiguous.
    let rows = datafusion::functions_aggregate::array_agg::array_agg(column).alias("pg_rows");
    subquery.subquery = Arc::new(
        LogicalPlanBuilder::from(plan)
            .aggregate(Vec::<Expr>::new(), vec![rows])?
            .build()?,
    );
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(SingleValue {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        })),
        vec![Expr::ScalarSubquery(subquery)],
    )))
}

/// The subquery with its one column nullable: `pg_nullable(c) AS c` on top.
fn nullable(mut subquery: Subquery) -> Result<Subquery> {
    let plan = subquery.subquery.as_ref().clone();
    let (qualifier, field) = plan.schema().qualified_field(0);
    let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    let name = field.name().clone();
    let nullable = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(Nullable {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        })),
        vec![column],
    ));
    subquery.subquery = Arc::new(
        LogicalPlanBuilder::from(plan)
            .project(vec![nullable.alias(name)])?
            .build()?,
    );
    Ok(subquery)
}

/// `pg_nullable(x)`: x, typed as possibly NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Nullable {
    signature: Signature,
}

impl ScalarUDFImpl for Nullable {
    fn name(&self) -> &str {
        "pg_nullable"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let field = args.arg_fields[0].as_ref().clone().with_nullable(true);
        Ok(Arc::new(field.with_name(self.name())))
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// `ORDER BY` keys with subqueries: computed in a projection below the
/// sort, dropped by one above it.
fn sort_by_subqueries(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Sort(sort) = node else {
        return Ok(Transformed::no(node));
    };
    let has_subquery = |e: &Expr| {
        e.exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
            ))
        })
        .unwrap_or(false)
    };
    if !sort.expr.iter().any(|s| has_subquery(&s.expr)) {
        return Ok(Transformed::no(LogicalPlan::Sort(sort)));
    }
    let input_schema = sort.input.schema().clone();
    let columns: Vec<Expr> = input_schema
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut computed = columns.clone();
    let mut keys = Vec::with_capacity(sort.expr.len());
    for (i, key) in sort.expr.into_iter().enumerate() {
        if has_subquery(&key.expr) {
            let name = format!("__order_by_{i}");
            computed.push(key.expr.alias(&name));
            keys.push(SortExpr {
                expr: Expr::Column(Column::from_name(name)),
                ..key
            });
        } else {
            keys.push(key);
        }
    }
    let with_keys = LogicalPlan::Projection(Projection::try_new(computed, sort.input)?);
    let sorted = LogicalPlan::Sort(Sort {
        expr: keys,
        input: Arc::new(with_keys),
        fetch: sort.fetch,
    });
    Ok(Transformed::yes(LogicalPlan::Projection(
        Projection::try_new(columns, Arc::new(sorted))?,
    )))
}

/// `pg_single_value(rows)`: NULL for no row (or no list), the value for
/// one, `21000` for more.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl ScalarUDFImpl for SingleValue {
    fn name(&self) -> &str {
        "pg_single_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::List(item) => Ok(item.data_type().clone()),
            other => Err(DataFusionError::Internal(format!(
                "pg_single_value of {other}"
            ))),
        }
    }

    /// Named as the subquery it reads.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let lists = args.args[0].to_array(args.number_rows)?;
        let lists = lists.as_list::<i32>();
        let mut indices: Vec<Option<u64>> = Vec::with_capacity(lists.len());
        for row in 0..lists.len() {
            if lists.is_null(row) {
                indices.push(None);
                continue;
            }
            let offsets = lists.value_offsets();
            let (start, end) = (offsets[row] as u64, offsets[row + 1] as u64);
            match end - start {
                0 => indices.push(None),
                1 => indices.push(Some(start)),
                _ => {
                    return Err(DataFusionError::External(Box::new(
                        QuiverError::CardinalityViolation(
                            "more than one row returned by a subquery used as an expression".into(),
                        ),
                    )))
                }
            }
        }
        let indices = UInt64Array::from(indices);
        let values = datafusion::arrow::compute::take(lists.values().as_ref(), &indices, None)?;
        super::pg_timezone::columnar(values, scalar)
    }
}
