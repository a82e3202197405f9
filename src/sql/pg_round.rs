//! `round(double precision)` as PostgreSQL has it: half to even (`rint`:
//! `round(2.5::float8)` is 2, `round(-0.5::float8)` is -0), where
//! DataFusion's `round` rounds half away from zero. `round(numeric)` rounds
//! half away from zero in both, and keeps DataFusion's function. A `real`
//! is rounded as a `double precision` (PostgreSQL has no `round(real)`).
//! `ceil`, `floor` and `trunc` of a numeric are PostgreSQL's too (see
//! [`integral_udfs`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Field, FieldRef, Float32Type, Float64Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Round {
    inner: Arc<ScalarUDF>,
}

/// `round`, replacing DataFusion's (which it calls for every other case).
pub fn round_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Round {
        inner: datafusion::functions::math::round(),
    })
}

impl ScalarUDFImpl for Round {
    fn name(&self) -> &str {
        "round"
    }

    super::forward_to_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // PostgreSQL has no round(real): a real is rounded as a double.
        if let [arg] = args.arg_fields {
            if arg.data_type() == &DataType::Float32 {
                let field = Field::new(self.name(), DataType::Float64, arg.is_nullable());
                return Ok(Arc::new(field));
            }
        }
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 1 {
            return self.inner.invoke_with_args(args);
        }
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Float64(v)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Float64(v.map(f64::round_ties_even)),
            )),
            ColumnarValue::Scalar(ScalarValue::Float32(v)) => Ok(ColumnarValue::Scalar(
                ScalarValue::Float64(v.map(|v| f64::from(v).round_ties_even())),
            )),
            ColumnarValue::Array(a) if a.data_type() == &DataType::Float64 => {
                let rounded = a
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(f64::round_ties_even);
                Ok(ColumnarValue::Array(Arc::new(rounded)))
            }
            ColumnarValue::Array(a) if a.data_type() == &DataType::Float32 => {
                let rounded = a
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float64Type>(|v| f64::from(v).round_ties_even());
                Ok(ColumnarValue::Array(Arc::new(rounded)))
            }
            _ => self.inner.invoke_with_args(args),
        }
    }
}

/// `ceil` (and `ceiling`), `floor` and `trunc` of a numeric, as
/// PostgreSQL has them: a numeric of scale 0 (`ceil(-1.5)` is `-1`, not
/// `-1.0`), one digit wider, so that `ceil(9.5)` is 10 (DataFusion kept
/// the type and failed with a decimal overflow). `trunc(x, n)` cuts each
/// value at its row's `n` (DataFusion's left a column's values as they
/// were); its scale is a constant `n`'s, or else the argument's (`1.2300`
/// where PostgreSQL shows `1.23`, the one-scale-per-column difference the
/// README lists). Floats
/// and everything else are DataFusion's.
pub fn integral_udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::math;
    [
        (math::ceil(), Integral::Ceil),
        (math::floor(), Integral::Floor),
        (math::trunc(), Integral::Trunc),
    ]
    .into_iter()
    .map(|(inner, how)| ScalarUDF::new_from_impl(ToIntegral { inner, how }))
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Integral {
    Ceil,
    Floor,
    Trunc,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToIntegral {
    inner: Arc<ScalarUDF>,
    how: Integral,
}

impl ToIntegral {
    /// The result type for a numeric argument (None: DataFusion's): scale
    /// 0; for `trunc(x, n)` the scale `n` when it is a constant (as
    /// PostgreSQL shows `trunc(123.456, 1)`: `123.4`), else the argument's.
    fn numeric_type(&self, args: &[DataType], digits: Option<i64>) -> Option<DataType> {
        let (DataType::Decimal128(precision, scale), rest) = args.split_first()? else {
            return None;
        };
        let kept = match (rest.len(), self.how, digits) {
            (0, _, _) => 0,
            (1, Integral::Trunc, Some(n)) => n.clamp(0, 30) as i8,
            (1, Integral::Trunc, None) => *scale,
            _ => return None,
        };
        let whole = (*precision as i8 - *scale).max(0);
        Some(DataType::Decimal128(
            (whole + kept + 1).clamp(1, 38) as u8,
            kept,
        ))
    }
}

impl ScalarUDFImpl for ToIntegral {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        match self.how {
            Integral::Ceil => {
                static CEILING: std::sync::LazyLock<Vec<String>> =
                    std::sync::LazyLock::new(|| vec!["ceiling".to_string()]);
                &CEILING
            }
            _ => self.inner.aliases(),
        }
    }

    super::forward_to_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let digits = match args.scalar_arguments.get(1) {
            Some(Some(n)) => n.cast_to(&DataType::Int64).ok().and_then(|n| match n {
                ScalarValue::Int64(n) => n,
                _ => None,
            }),
            _ => None,
        };
        match self.numeric_type(&types, digits) {
            Some(t) => {
                let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
                Ok(Arc::new(Field::new(self.name(), t, nullable)))
            }
            None => self.inner.return_field_from_args(args),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (DataType::Decimal128(_, kept), DataType::Decimal128(_, scale)) =
            (args.return_field.data_type(), args.args[0].data_type())
        else {
            return self.inner.invoke_with_args(args);
        };
        let (kept, scale, how) = (*kept, scale, self.how);
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let values = arrays[0].as_primitive::<Decimal128Type>();
        // trunc's count of digits per row (the argument's scale without one).
        let digits = match arrays.get(1) {
            Some(n) => datafusion::arrow::compute::cast(n, &DataType::Int64)?,
            None => Arc::new(datafusion::arrow::array::Int64Array::from(vec![
                0i64;
                values.len()
            ])),
        };
        let digits = digits.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let overflow = || {
            datafusion::error::DataFusionError::External(Box::new(
                crate::error::QuiverError::OutOfRange("numeric field overflow".into()),
            ))
        };
        let mut out = datafusion::arrow::array::Decimal128Builder::with_capacity(values.len());
        for row in 0..values.len() {
            if values.is_null(row) || digits.is_null(row) {
                out.append_null();
                continue;
            }
            let v = values.value(row);
            // Digits dropped: those past the count, 0 to all of them.
            let dropped = (i64::from(scale) - digits.value(row)).clamp(0, 80) as u32;
            let unit = 10i128.checked_pow(dropped);
            let cut = match unit {
                Some(unit) => {
                    let (q, r) = (v / unit, v % unit);
                    let q = match how {
                        Integral::Ceil if r > 0 => q + 1,
                        Integral::Floor if r < 0 => q - 1,
                        _ => q,
                    };
                    // Back at the argument's scale.
                    q.checked_mul(unit).ok_or_else(overflow)?
                }
                None => 0,
            };
            let shown = match kept.cmp(&scale) {
                std::cmp::Ordering::Less => cut / 10i128.pow((scale - kept) as u32),
                std::cmp::Ordering::Equal => cut,
                std::cmp::Ordering::Greater => cut
                    .checked_mul(10i128.pow((kept - scale) as u32))
                    .ok_or_else(overflow)?,
            };
            out.append_value(shown);
        }
        let out: datafusion::arrow::array::ArrayRef = Arc::new(
            out.finish()
                .with_data_type(args.return_field.data_type().clone()),
        );
        Ok(match scalar {
            true => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            false => ColumnarValue::Array(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn floats_round_half_to_even_and_numerics_half_away() {
        let ctx = SessionContext::new();
        ctx.register_udf(round_udf());
        let batches = ctx
            .sql(
                "SELECT round(CAST(2.5 AS DOUBLE)) a, round(CAST(-0.5 AS DOUBLE)) b, \
                 round(CAST(3.5 AS REAL)) c, round(CAST(2.5 AS DECIMAL(3,1))) d, \
                 round(CAST(x AS DOUBLE)) e FROM (VALUES (0.5), (1.5), (-2.5)) v(x)",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("| "))
            .skip(1)
            .collect();
        assert_eq!(
            rows,
            [
                "| 2.0 | -0.0 | 4.0 | 3 | 0.0  |",
                "| 2.0 | -0.0 | 4.0 | 3 | 2.0  |",
                "| 2.0 | -0.0 | 4.0 | 3 | -2.0 |",
            ],
            "{text}"
        );
    }
}
