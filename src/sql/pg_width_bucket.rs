//! `width_bucket(operand, low, high, count)`: which of `count` equal
//! buckets between `low` and `high` holds `operand` (0 below, `count + 1`
//! above; `low > high` counts downwards), as PostgreSQL 15 computes it.
//! With numeric arguments the bucket is exact (integer arithmetic on the
//! unscaled values); with a float among them, PostgreSQL 15's float
//! formula, rounding included. Histograms in BI tools use it.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::{
    i256, ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int32Type,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::QuiverError;

pub fn width_bucket_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(WidthBucket {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WidthBucket {
    signature: Signature,
}

fn bad(message: &str) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::InvalidWidthBucketArgument(
        message.into(),
    )))
}

fn out_of_range() -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::OutOfRange(
        "integer out of range".into(),
    )))
}

impl ScalarUDFImpl for WidthBucket {
    fn name(&self) -> &str {
        "width_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Numeric when the three values are numerics or integers with a
    /// numeric among them (PostgreSQL's exact version); otherwise double
    /// precision (its preferred numeric type).
    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [op, low, high, count] = args else {
            return Err(DataFusionError::Plan(
                "function width_bucket takes an operand, two bounds and a count".into(),
            ));
        };
        let values = [op, low, high];
        if !(count.is_integer() || count.is_null()) {
            return Err(DataFusionError::Plan(format!(
                "function width_bucket(..., {count}) does not exist: the count is an integer"
            )));
        }
        let numeric = values.iter().any(|t| matches!(t, DataType::Decimal128(..)))
            && values
                .iter()
                .all(|t| matches!(t, DataType::Decimal128(..)) || t.is_integer() || t.is_null());
        let value = if numeric {
            // One scale for the three, as many digits as a decimal holds.
            let scale = values
                .iter()
                .map(|t| match t {
                    DataType::Decimal128(_, s) => *s,
                    _ => 0,
                })
                .max()
                .unwrap_or(0);
            DataType::Decimal128(38, scale)
        } else if values.iter().all(|t| t.is_numeric() || t.is_null()) {
            DataType::Float64
        } else {
            return Err(DataFusionError::Plan(format!(
                "function width_bucket({}, {}, {}, integer) does not exist",
                values[0], values[1], values[2]
            )));
        };
        Ok(vec![value.clone(), value.clone(), value, DataType::Int32])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let buckets = match arrays[0].data_type() {
            DataType::Decimal128(..) => each_row::<Decimal128Type>(&arrays, numeric_bucket)?,
            _ => each_row::<Float64Type>(&arrays, float_bucket)?,
        };
        let array: ArrayRef = Arc::new(buckets);
        Ok(ColumnarValue::Array(array))
    }
}

/// `bucket` of each row whose four arguments are all set (NULL otherwise).
fn each_row<T: ArrowPrimitiveType>(
    arrays: &[ArrayRef],
    bucket: impl Fn(T::Native, T::Native, T::Native, i32) -> Result<i32>,
) -> Result<Int32Array> {
    let [op, low, high] = [0, 1, 2].map(|i| arrays[i].as_primitive::<T>());
    let counts = arrays[3].as_primitive::<Int32Type>();
    (0..op.len())
        .map(|row| {
            arrays
                .iter()
                .all(|a| a.is_valid(row))
                .then(|| {
                    bucket(
                        op.value(row),
                        low.value(row),
                        high.value(row),
                        counts.value(row),
                    )
                })
                .transpose()
        })
        .collect()
}

/// The bucket past the last: `count + 1`, which may not fit.
fn above(count: i32) -> Result<i32> {
    count.checked_add(1).ok_or_else(out_of_range)
}

/// The bucket of `op`, given `bucket(a, b, c, d)`: the bucket (from 1)
/// at fraction (a - b) / (c - d) of the way from the near bound to the
/// far one.
fn place<T: PartialOrd + Copy>(
    op: T,
    low: T,
    high: T,
    count: i32,
    bucket: impl Fn(T, T, T, T) -> i32,
) -> Result<i32> {
    if low < high {
        if op < low {
            Ok(0)
        } else if op >= high {
            above(count)
        } else {
            Ok(bucket(op, low, high, low))
        }
    } else if low > high {
        if op > low {
            Ok(0)
        } else if op <= high {
            above(count)
        } else {
            Ok(bucket(low, op, low, high))
        }
    } else {
        Err(bad("lower bound cannot equal upper bound"))
    }
}

fn check_count(count: i32) -> Result<()> {
    match count > 0 {
        true => Ok(()),
        false => Err(bad("count must be greater than zero")),
    }
}

/// PostgreSQL 15's `width_bucket_float8`.
fn float_bucket(op: f64, low: f64, high: f64, count: i32) -> Result<i32> {
    check_count(count)?;
    if op.is_nan() || low.is_nan() || high.is_nan() {
        return Err(bad("operand, lower bound, and upper bound cannot be NaN"));
    }
    if low.is_infinite() || high.is_infinite() {
        return Err(bad("lower and upper bounds must be finite"));
    }
    let count_f = f64::from(count);
    place(op, low, high, count, |a, b, c, d| {
        (count_f * (a - b) / (c - d) + 1.0) as i32
    })
}

/// PostgreSQL's `width_bucket_numeric`, on unscaled values of one scale:
/// floor((op - low) * count / (high - low)) + 1, exactly.
fn numeric_bucket(op: i128, low: i128, high: i128, count: i32) -> Result<i32> {
    check_count(count)?;
    let wide = i256::from_i128;
    place(op, low, high, count, |a, b, c, d| {
        // Both differences positive, the quotient below count: it fits.
        let quotient = (wide(a) - wide(b)) * wide(i128::from(count)) / (wide(c) - wide(d));
        quotient.as_i128() as i32 + 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_postgresql() {
        // Answers from PostgreSQL 15.
        assert_eq!(float_bucket(0.3, 0.1, 0.5, 2).unwrap(), 2);
        assert_eq!(float_bucket(0.7, 0.1, 0.4, 3).unwrap(), 4);
        assert_eq!(float_bucket(10.0, 0.0, 10.0, 4).unwrap(), 5);
        assert_eq!(float_bucket(-1.0, 0.0, 10.0, 4).unwrap(), 0);
        assert_eq!(float_bucket(7.0, 10.0, 0.0, 4).unwrap(), 2);
        assert_eq!(float_bucket(10.0, 10.0, 0.0, 4).unwrap(), 1);
        assert_eq!(float_bucket(0.0, 10.0, 0.0, 4).unwrap(), 5);
        assert_eq!(float_bucket(5.0, 0.0, 10.0, i32::MAX).unwrap(), 1073741824);
        assert!(float_bucket(20.0, 0.0, 10.0, i32::MAX).is_err());
        assert!(float_bucket(1.0, 0.0, 0.0, 3).is_err());
        assert!(float_bucket(1.0, 0.0, 1.0, 0).is_err());
        // Scale 1: 5.3 in [0, 10) by 4 is bucket 3; 0.3 in [0.1, 0.5) by 2
        // is exactly on the edge of bucket 2.
        assert_eq!(numeric_bucket(53, 0, 100, 4).unwrap(), 3);
        assert_eq!(numeric_bucket(3, 1, 5, 2).unwrap(), 2);
        assert_eq!(numeric_bucket(4, 1, 7, 2).unwrap(), 2);
        assert_eq!(
            numeric_bucket(i128::MAX - 1, i128::MIN, i128::MAX, 1000).unwrap(),
            1000
        );
    }
}
