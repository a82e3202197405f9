//! The type of a `VALUES` column that mixes `double precision` and
//! `numeric` rows: PostgreSQL resolves it to double precision (the
//! preferred type of the numeric category); DataFusion's
//! `type_union_resolution` to a decimal, numeric(30,15), which changes
//! what `round(x)` or `avg(x)` answer and cannot hold a float past 10^15.
//! The rows are re-typed before the analyzer runs, for queries (an
//! `INSERT ... VALUES` is coerced to its target's types instead).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder};

/// Re-types float-and-numeric VALUES columns of `plan` as double
/// precision (and the plan above them).
pub fn floats_win(plan: LogicalPlan) -> Result<LogicalPlan> {
    let mut changed = false;
    let plan = plan.transform_up(|node| {
        if let LogicalPlan::Values(values) = &node {
            if let Some(retyped) = retyped(&values.values, values.schema.fields())? {
                changed = true;
                return Ok(Transformed::yes(retyped));
            }
        }
        if changed {
            return Ok(Transformed::yes(node.recompute_schema()?));
        }
        Ok(Transformed::no(node))
    })?;
    Ok(plan.data)
}

fn retyped(
    rows: &[Vec<Expr>],
    fields: &datafusion::arrow::datatypes::Fields,
) -> Result<Option<LogicalPlan>> {
    let empty = DFSchema::empty();
    let is_float = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float64);
    // The row's own value, under the cast to the column's type.
    let own = |e: &Expr| match e {
        Expr::Cast(Cast { expr, field }) if field.data_type().is_decimal() => expr.as_ref().clone(),
        other => other.clone(),
    };
    let mut floats = vec![false; fields.len()];
    for (j, field) in fields.iter().enumerate() {
        if !field.data_type().is_decimal() {
            continue;
        }
        for row in rows {
            if is_float(&own(&row[j]).get_type(&empty)?) {
                floats[j] = true;
                break;
            }
        }
    }
    if !floats.contains(&true) {
        return Ok(None);
    }
    let rows: Vec<Vec<Expr>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, e)| {
                    if floats[j] {
                        own(e).cast_to(&DataType::Float64, &empty)
                    } else {
                        Ok(e.clone())
                    }
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok(Some(LogicalPlanBuilder::values(rows)?.build()?))
}
