//! PostgreSQL's ordered-set aggregates DataFusion lacks:
//! `percentile_disc(p) WITHIN GROUP (ORDER BY x)` and
//! `mode() WITHIN GROUP (ORDER BY x)`. Both become a function over
//! DataFusion's `array_agg(x ORDER BY x)` (which brings the order, FILTER
//! and grouping): `pg_percentile_disc(array_agg(...), p)` picks the first
//! value at or past the fraction p of the non-null values, `pg_mode` the
//! most frequent value, the first in the order among equals.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArguments,
};

use crate::error::QuiverError;

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedSet {
    name: &'static str,
    signature: Signature,
}

/// `pg_percentile_disc` and `pg_mode`, for registering with a session.
pub fn udfs() -> Vec<ScalarUDF> {
    ["pg_percentile_disc", "pg_mode"]
        .into_iter()
        .map(|name| {
            ScalarUDF::from(OrderedSet {
                name,
                signature: Signature::variadic_any(Volatility::Immutable),
            })
        })
        .collect()
}

fn item_field(arg: Option<&FieldRef>) -> Result<FieldRef> {
    match arg.map(|f| f.data_type()) {
        Some(DataType::List(item) | DataType::LargeList(item)) => Ok(item.clone()),
        other => Err(DataFusionError::Internal(format!(
            "ordered-set aggregate over {other:?}"
        ))),
    }
}

impl ScalarUDFImpl for OrderedSet {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args.first() {
            Some(DataType::List(item) | DataType::LargeList(item)) => Ok(item.data_type().clone()),
            other => Err(DataFusionError::Internal(format!(
                "{} over {other:?}",
                self.name
            ))),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let item = item_field(args.arg_fields.first())?;
        Ok(Arc::new(
            Field::new(self.name, item.data_type().clone(), true)
                .with_metadata(item.metadata().clone()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let item_type = self.return_type(&[arrays[0].data_type().clone()])?;
        let lists = arrays[0].as_list::<i32>();
        let fractions = match arrays.get(1) {
            Some(p) => Some(cast(p, &DataType::Float64)?),
            None => None,
        };
        let mut picked = Vec::with_capacity(rows);
        for row in 0..rows {
            if lists.is_null(row) {
                picked.push(ScalarValue::try_from(&item_type)?);
                continue;
            }
            let values: ArrayRef = lists.value(row);
            let present: Vec<usize> = (0..values.len()).filter(|&i| values.is_valid(i)).collect();
            let at = match &fractions {
                Some(p) => {
                    let p = p.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
                    if p.is_null(row) {
                        None
                    } else {
                        percentile_position(p.value(row), present.len())?
                    }
                }
                None => mode_position(&values, &present)?,
            };
            picked.push(match at {
                Some(i) => ScalarValue::try_from_array(&values, present[i])?,
                None => ScalarValue::try_from(&item_type)?,
            });
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(picked)?))
    }
}

/// The position among `n` ordered values that `percentile_disc(p)` picks:
/// the first whose place reaches the fraction.
fn percentile_position(p: f64, n: usize) -> Result<Option<usize>> {
    if !(0.0..=1.0).contains(&p) {
        return Err(DataFusionError::External(Box::new(
            QuiverError::OutOfRange(format!("percentile value {p} is not between 0 and 1")),
        )));
    }
    if n == 0 {
        return Ok(None);
    }
    let place = (p * n as f64).ceil() as usize;
    Ok(Some(place.clamp(1, n) - 1))
}

/// The position (among `present`) of the first of the longest run of
/// equal values in sorted `values`.
fn mode_position(values: &ArrayRef, present: &[usize]) -> Result<Option<usize>> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for i in 1..=present.len() {
        let ends = i == present.len()
            || ScalarValue::try_from_array(values, present[i])?
                != ScalarValue::try_from_array(values, present[start])?;
        if ends {
            if best.is_none_or(|(_, length)| i - start > length) {
                best = Some((start, i - start));
            }
            start = i;
        }
    }
    Ok(best.map(|(at, _)| at))
}

/// `percentile_disc(p) WITHIN GROUP (ORDER BY x)` as
/// `pg_percentile_disc(array_agg(x ORDER BY x), p)`, `mode() WITHIN GROUP
/// (ORDER BY x)` as `pg_mode(array_agg(x ORDER BY x))`; a FILTER goes to
/// the `array_agg`. Column names are taken before this runs.
pub fn rewrite_aggregate(expr: &mut SqlExpr) {
    let SqlExpr::Function(f) = expr else {
        return;
    };
    if f.over.is_some() || f.within_group.len() != 1 || f.name.0.len() != 1 {
        return;
    }
    let name = f.name.to_string().to_ascii_lowercase();
    let finish = match name.as_str() {
        "percentile_disc" => "pg_percentile_disc",
        "mode" => "pg_mode",
        _ => return,
    };
    let direct: Vec<SqlExpr> = match &f.args {
        FunctionArguments::List(list) => {
            let direct = list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>();
            match direct {
                Some(direct) => direct,
                None => return,
            }
        }
        _ => vec![],
    };
    let order = f.within_group.remove(0);
    let mut aggregate = super::function_call(
        "array_agg",
        vec![order.expr.clone()],
        vec![FunctionArgumentClause::OrderBy(vec![order])],
    );
    if let SqlExpr::Function(agg) = &mut aggregate {
        agg.filter = f.filter.take();
    }
    let mut args = vec![aggregate];
    args.extend(direct);
    *expr = super::function_call(finish, args, vec![]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_positions() {
        assert_eq!(percentile_position(0.5, 4).unwrap(), Some(1));
        assert_eq!(percentile_position(0.0, 4).unwrap(), Some(0));
        assert_eq!(percentile_position(1.0, 4).unwrap(), Some(3));
        assert_eq!(percentile_position(0.51, 4).unwrap(), Some(2));
        assert_eq!(percentile_position(0.5, 0).unwrap(), None);
        assert!(percentile_position(1.5, 4).is_err());
    }
}
