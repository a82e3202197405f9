//! `make_interval(years, months, weeks, days, hours, mins, secs)`, every
//! argument defaulting to 0, as PostgreSQL has it; most callers name the
//! ones they give (`make_interval(days => 3)`). DataFusion fills named
//! arguments only up to the last one given without gaps, so before
//! planning such a call is spelled with all seven, positionally.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, IntervalMonthDayNano, IntervalUnit,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Value,
};

use super::pg_interval::out_of_range;

const PARAMETERS: [&str; 7] = ["years", "months", "weeks", "days", "hours", "mins", "secs"];

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(MakeInterval {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// Each `make_interval` call with named arguments as the positional call
/// of all seven (those not given are 0).
pub(crate) fn positional_arguments(statement: &mut datafusion::sql::sqlparser::ast::Statement) {
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr {
            if function
                .name
                .to_string()
                .eq_ignore_ascii_case("make_interval")
            {
                if let FunctionArguments::List(list) = &mut function.args {
                    fill(&mut list.args);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The name of a named argument (`days => 3`, `days := 3`).
fn argument_name(arg: &FunctionArg) -> Option<&Ident> {
    match arg {
        FunctionArg::Named { name, .. } => Some(name),
        FunctionArg::ExprNamed {
            name: Expr::Identifier(name),
            ..
        } => Some(name),
        _ => None,
    }
}

fn fill(args: &mut Vec<FunctionArg>) {
    if !args.iter().any(|a| argument_name(a).is_some()) || args.len() > PARAMETERS.len() {
        return;
    }
    let zero = |i: usize| {
        let text = if i == 6 { "0.0" } else { "0" };
        FunctionArgExpr::Expr(Expr::value(Value::Number(text.into(), false)))
    };
    let mut filled: Vec<Option<FunctionArgExpr>> = vec![None; PARAMETERS.len()];
    for (i, arg) in args.iter().enumerate() {
        let slot = match argument_name(arg) {
            None => Some(i),
            Some(name) => PARAMETERS
                .iter()
                .position(|p| p.eq_ignore_ascii_case(&name.value)),
        };
        // An unknown or repeated name is left for the call to be refused
        // with it in the message.
        let (
            Some(slot),
            FunctionArg::Unnamed(value)
            | FunctionArg::Named { arg: value, .. }
            | FunctionArg::ExprNamed { arg: value, .. },
        ) = (slot, arg)
        else {
            return;
        };
        if filled[slot].is_some() {
            return;
        }
        filled[slot] = Some(value.clone());
    }
    *args = filled
        .into_iter()
        .enumerate()
        .map(|(i, a)| FunctionArg::Unnamed(a.unwrap_or_else(|| zero(i))))
        .collect();
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MakeInterval {
    signature: Signature,
}

/// PostgreSQL's make_interval of one row.
fn make(parts: [i32; 6], secs: f64) -> Result<IntervalMonthDayNano> {
    let [years, months, weeks, days, hours, mins] = parts.map(i64::from);
    let months = years
        .checked_mul(12)
        .and_then(|m| m.checked_add(months))
        .and_then(|m| i32::try_from(m).ok())
        .ok_or_else(out_of_range)?;
    let days = i32::try_from(weeks * 7 + days).map_err(|_| out_of_range())?;
    let micros = (secs * 1e6).round() + (hours * 3_600 + mins * 60) as f64 * 1e6;
    super::pg_interval::with_micros(months, days, micros)
}

impl ScalarUDFImpl for MakeInterval {
    fn name(&self) -> &str {
        "make_interval"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() > PARAMETERS.len() {
            return Err(DataFusionError::Plan(format!(
                "function make_interval with {} arguments does not exist",
                args.len()
            )));
        }
        Ok((0..args.len())
            .map(|i| match i {
                6 => DataType::Float64,
                _ => DataType::Int32,
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = if scalar { 1 } else { rows };
        let mut out = Vec::with_capacity(rows);
        'rows: for row in 0..rows {
            let mut parts = [0i32; 6];
            let mut secs = 0.0;
            for (i, array) in arrays.iter().enumerate() {
                let row = if array.len() == 1 { 0 } else { row };
                if array.is_null(row) {
                    out.push(None);
                    continue 'rows;
                }
                match i {
                    6 => secs = array.as_primitive::<Float64Type>().value(row),
                    _ => parts[i] = array.as_primitive::<Int32Type>().value(row),
                }
            }
            out.push(Some(make(parts, secs)?));
        }
        let out: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(out));
        super::pg_timezone::columnar(out, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_as_in_postgresql() {
        assert_eq!(
            make([1, 2, 1, 3, 4, 5], 6.5).unwrap(),
            IntervalMonthDayNano::new(
                14,
                10,
                ((4 * 3600 + 5 * 60) * 1_000_000 + 6_500_000) * 1_000
            )
        );
        assert!(make([i32::MAX, 0, 0, 0, 0, 0], 0.0).is_err());
        assert!(make([0; 6], f64::INFINITY).is_err());
    }

    #[test]
    fn named_arguments_become_all_seven() {
        let statements =
            crate::sql::parse_statements("SELECT make_interval(1, days => 3, secs => 1.5)")
                .unwrap();
        assert_eq!(
            statements[0].to_string(),
            "SELECT make_interval(1, 0, 0, 3, 0, 0, 1.5)"
        );
    }
}
