//! The math functions' domain errors as PostgreSQL raises them. DataFusion
//! answers NaN or an infinity where PostgreSQL refuses the argument:
//! `ln(0)` is `-Infinity`, `ln(-1)`, `acos(2)` and `power(-8, 1.0/3)` are
//! NaN, and a client reads them as values. Each function here is
//! DataFusion's, with PostgreSQL's check of its arguments first:
//!
//! - `sqrt` of a negative number, `power` of zero to a negative power and
//!   of a negative number to a non-integer power: 2201F;
//! - `ln`, `log` and `log10` of zero or of a negative number: 2201E; the
//!   logarithm to base 1 divides by zero (22012);
//! - `acos`, `asin` and `atanh` outside [-1, 1], `acosh` below 1: 22003;
//! - `abs` of the smallest integer of its type: 22003 (DataFusion's
//!   overflow was an internal error).
//!
//! NaN arguments give NaN, as in PostgreSQL. The functions return what
//! DataFusion's return (double precision for numeric arguments too,
//! where PostgreSQL computes in numeric: a difference the README lists).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int16Type, Int32Type, Int64Type};
use datafusion::arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::QuiverError;

/// The functions, replacing DataFusion's of the same names.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::math;
    [
        (math::sqrt(), Domain::Sqrt),
        (math::ln(), Domain::Log),
        (math::log10(), Domain::Log),
        (math::log(), Domain::Log),
        (math::power(), Domain::Power),
        (math::acos(), Domain::UnitInterval),
        (math::asin(), Domain::UnitInterval),
        (math::atanh(), Domain::UnitInterval),
        (math::acosh(), Domain::AtLeastOne),
        (math::abs(), Domain::Abs),
    ]
    .into_iter()
    .map(|(inner, domain)| ScalarUDF::new_from_impl(Checked { inner, domain }))
    .collect()
}

/// Which arguments a function refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Domain {
    Sqrt,
    /// One argument, or the base and then the argument.
    Log,
    Power,
    UnitInterval,
    AtLeastOne,
    Abs,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Checked {
    inner: Arc<ScalarUDF>,
    domain: Domain,
}

fn power_error(message: &str) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::InvalidPowerArgument(message.into())))
}

fn log_error(x: f64) -> DataFusionError {
    let message = match x == 0.0 {
        true => "cannot take logarithm of zero",
        false => "cannot take logarithm of a negative number",
    };
    DataFusionError::External(Box::new(QuiverError::InvalidLogarithmArgument(
        message.into(),
    )))
}

fn out_of_range(message: &str) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::OutOfRange(message.into())))
}

/// One argument's values as floats (a constant once).
enum Values {
    Scalar(Option<f64>),
    Array(Float64Array),
}

impl Values {
    fn of(arg: &ColumnarValue) -> Result<Values> {
        Ok(match arg {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(v) => Values::Scalar(v),
                _ => Values::Scalar(None),
            },
            ColumnarValue::Array(a) => {
                Values::Array(cast(a, &DataType::Float64)?.as_primitive().clone())
            }
        })
    }

    fn get(&self, row: usize) -> Option<f64> {
        match self {
            Values::Scalar(v) => *v,
            Values::Array(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

impl Domain {
    /// PostgreSQL's error for these arguments of one row, if any.
    fn check(self, args: &[Option<f64>]) -> Result<()> {
        match (self, args) {
            (Domain::Sqrt, [Some(x)]) if *x < 0.0 => {
                Err(power_error("cannot take square root of a negative number"))
            }
            (Domain::Log, [Some(x)]) if *x <= 0.0 => Err(log_error(*x)),
            (Domain::Log, [Some(base), Some(x)]) => {
                if *base <= 0.0 {
                    Err(log_error(*base))
                } else if *x <= 0.0 {
                    Err(log_error(*x))
                } else if *base == 1.0 {
                    Err(DataFusionError::ArrowError(
                        Box::new(ArrowError::DivideByZero),
                        None,
                    ))
                } else {
                    Ok(())
                }
            }
            (Domain::Power, [Some(x), Some(y)]) if *x == 0.0 && *y < 0.0 => {
                Err(power_error("zero raised to a negative power is undefined"))
            }
            // An infinite power is an integer to PostgreSQL (floor(y) == y).
            (Domain::Power, [Some(x), Some(y)]) if *x < 0.0 && y.floor() != *y && !y.is_nan() => {
                Err(power_error(
                    "a negative number raised to a non-integer power yields a complex result",
                ))
            }
            (Domain::UnitInterval, [Some(x)]) if !(-1.0..=1.0).contains(x) && !x.is_nan() => {
                Err(out_of_range("input is out of range"))
            }
            (Domain::AtLeastOne, [Some(x)]) if *x < 1.0 => {
                Err(out_of_range("input is out of range"))
            }
            _ => Ok(()),
        }
    }

    /// Checks every row of `args`.
    fn check_rows(self, args: &[ColumnarValue], rows: usize) -> Result<()> {
        if self == Domain::Abs {
            return args.first().map_or(Ok(()), smallest_integer);
        }
        let values = args.iter().map(Values::of).collect::<Result<Vec<_>>>()?;
        let constant = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let mut row_args = vec![None; values.len()];
        for row in 0..if constant { 1 } else { rows } {
            for (slot, v) in row_args.iter_mut().zip(&values) {
                *slot = v.get(row);
            }
            self.check(&row_args)?;
        }
        Ok(())
    }
}

/// 22003 for the smallest integer of its type, whose absolute value the
/// type does not hold.
fn smallest_integer(arg: &ColumnarValue) -> Result<()> {
    let array: ArrayRef = match arg {
        ColumnarValue::Scalar(s) => s.to_array()?,
        ColumnarValue::Array(a) => a.clone(),
    };
    let found = match array.data_type() {
        DataType::Int16 => array
            .as_primitive::<Int16Type>()
            .iter()
            .any(|v| v == Some(i16::MIN)),
        DataType::Int32 => array
            .as_primitive::<Int32Type>()
            .iter()
            .any(|v| v == Some(i32::MIN)),
        DataType::Int64 => array
            .as_primitive::<Int64Type>()
            .iter()
            .any(|v| v == Some(i64::MIN)),
        _ => false,
    };
    match found {
        true => Err(super::pg_arithmetic::out_of_range(array.data_type())),
        false => Ok(()),
    }
}

impl ScalarUDFImpl for Checked {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    super::forward_to_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.domain.check_rows(&args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }
}

/// `~ x`, PostgreSQL's bitwise NOT of an integer (the parser's prefix
/// operator becomes this function: see `pg_types_in`).
pub fn bitwise_not_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(BitwiseNot {
        signature: Signature::user_defined(datafusion::logical_expr::Volatility::Immutable),
    })
}

pub const BITWISE_NOT: &str = "pg_bitwise_not";

#[derive(Debug, PartialEq, Eq, Hash)]
struct BitwiseNot {
    signature: Signature,
}

impl ScalarUDFImpl for BitwiseNot {
    fn name(&self) -> &str {
        BITWISE_NOT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Integers as they are; anything else is refused by `return_type`
    /// (an error here would reach the client wrapped in DataFusion's
    /// account of its coercion).
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        Ok(args
            .iter()
            .map(|t| match t {
                DataType::Int8 => DataType::Int16,
                DataType::Null => DataType::Int32,
                other => other.clone(),
            })
            .collect())
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match args {
            [t @ (DataType::Int16 | DataType::Int32 | DataType::Int64)] => Ok(t.clone()),
            [other] => {
                let field = datafusion::arrow::datatypes::Field::new("", other.clone(), true);
                Err(DataFusionError::Plan(format!(
                    "operator does not exist: ~ {}",
                    crate::engine::types::display_type(&field)
                )))
            }
            _ => Err(DataFusionError::Plan("~ takes one operand".into())),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::compute::kernels::bitwise::bitwise_not;
        let not = |array: &ArrayRef| -> Result<ArrayRef> {
            Ok(match array.data_type() {
                DataType::Int16 => Arc::new(bitwise_not(array.as_primitive::<Int16Type>())?),
                DataType::Int32 => Arc::new(bitwise_not(array.as_primitive::<Int32Type>())?),
                _ => Arc::new(bitwise_not(array.as_primitive::<Int64Type>())?),
            })
        };
        match &args.args[0] {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(not(a)?)),
            ColumnarValue::Scalar(s) => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &not(&s.to_array()?)?,
                0,
            )?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn answer(sql: &str) -> std::result::Result<String, String> {
        let ctx = SessionContext::new();
        for udf in udfs() {
            ctx.register_udf(udf);
        }
        let batches = async { ctx.sql(sql).await?.collect().await }
            .await
            .map_err(|e| e.to_string())?;
        let column = batches[0].column(0);
        Ok(datafusion::arrow::util::display::array_value_to_string(column, 0).unwrap())
    }

    #[tokio::test]
    async fn arguments_postgresql_refuses_are_errors() {
        for (sql, message) in [
            ("SELECT ln(0.0)", "cannot take logarithm of zero"),
            (
                "SELECT ln(-1.0)",
                "cannot take logarithm of a negative number",
            ),
            (
                "SELECT log10(x) FROM (VALUES (1.0), (-2.0)) v(x)",
                "negative number",
            ),
            ("SELECT log(0.0, 8.0)", "logarithm of zero"),
            ("SELECT log(1.0, 8.0)", "Divide by zero"),
            ("SELECT sqrt(-4.0)", "square root of a negative number"),
            ("SELECT power(0.0, -1.0)", "zero raised to a negative power"),
            ("SELECT power(-8.0, 1.0 / 3)", "non-integer power"),
            ("SELECT acos(2.0)", "input is out of range"),
            ("SELECT atanh(-1.5)", "input is out of range"),
            ("SELECT acosh(0.5)", "input is out of range"),
            (
                "SELECT abs(CAST(-2147483648 AS INT))",
                "integer out of range",
            ),
        ] {
            let error = answer(sql).await.expect_err(sql);
            assert!(error.contains(message), "{sql}: {error}");
        }
    }

    #[tokio::test]
    async fn arguments_in_the_domain_keep_datafusions_answers() {
        for (sql, expected) in [
            ("SELECT ln(1.0)", "0.0"),
            ("SELECT log(2.0, 8.0)", "3.0"),
            ("SELECT sqrt(16.0)", "4.0"),
            ("SELECT power(-2.0, 3.0)", "-8.0"),
            ("SELECT power(-2.0, CAST('Infinity' AS DOUBLE))", "inf"),
            ("SELECT power(0.0, 0.0)", "1.0"),
            ("SELECT acos(1.0)", "0.0"),
            ("SELECT ln(CAST('NaN' AS DOUBLE))", "NaN"),
            ("SELECT abs(CAST(-32767 AS SMALLINT))", "32767"),
            ("SELECT ln(NULL)", ""),
        ] {
            assert_eq!(answer(sql).await.expect(sql), expected, "{sql}");
        }
    }
}

/// `div(y, x)`: the integer quotient of two numerics, truncated toward
/// zero, as a numeric of scale 0 (PostgreSQL's `numeric_div_trunc`);
/// integers are read as numerics. 22012 for a zero divisor.
pub fn div_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(IntegerQuotient {
        signature: Signature::any(2, datafusion::logical_expr::Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntegerQuotient {
    signature: Signature,
}

impl IntegerQuotient {
    /// An argument as a 38-digit decimal with its own scale.
    fn decimal(array: &ArrayRef) -> Result<ArrayRef> {
        let target = match array.data_type() {
            DataType::Decimal128(_, s) => DataType::Decimal128(38, *s),
            t if t.is_integer() || *t == DataType::Null => DataType::Decimal128(38, 0),
            t => {
                return Err(DataFusionError::Plan(format!(
                    "function div({t}, ...) does not exist"
                )))
            }
        };
        Ok(cast(array, &target)?)
    }
}

impl ScalarUDFImpl for IntegerQuotient {
    fn name(&self) -> &str {
        "div"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::Decimal128Array;
        use datafusion::arrow::datatypes::{i256, Decimal128Type};
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (y, x) = (Self::decimal(&arrays[0])?, Self::decimal(&arrays[1])?);
        let scale = |a: &ArrayRef| match a.data_type() {
            DataType::Decimal128(_, s) => u32::from(s.unsigned_abs()),
            _ => 0,
        };
        let (sy, sx) = (scale(&y), scale(&x));
        let ten = i256::from_i128(10);
        // y / 10^sy / (x / 10^sx) = (y * 10^sx) / (x * 10^sy), truncated.
        let quotient = |a: i128, b: i128| -> Result<i128> {
            if b == 0 {
                return Err(DataFusionError::ArrowError(
                    Box::new(ArrowError::DivideByZero),
                    None,
                ));
            }
            let num = i256::from_i128(a).wrapping_mul(ten.wrapping_pow(sx));
            let den = i256::from_i128(b).wrapping_mul(ten.wrapping_pow(sy));
            let q = num.wrapping_div(den);
            q.to_i128()
                .filter(|q| q.unsigned_abs() < 10u128.pow(38))
                .ok_or_else(|| {
                    DataFusionError::External(Box::new(QuiverError::OutOfRange(
                        "value overflows numeric format".into(),
                    )))
                })
        };
        let (y, x) = (
            y.as_primitive::<Decimal128Type>(),
            x.as_primitive::<Decimal128Type>(),
        );
        let out: Decimal128Array = y
            .iter()
            .zip(x.iter())
            .map(|pair| match pair {
                (Some(a), Some(b)) => quotient(a, b).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(ColumnarValue::Array(Arc::new(
            out.with_precision_and_scale(38, 0)?,
        )))
    }
}
