//! `round(double precision)` as PostgreSQL has it: half to even (`rint`:
//! `round(2.5::float8)` is 2, `round(-0.5::float8)` is -0), where
//! DataFusion's `round` rounds half away from zero. `round(numeric)` rounds
//! half away from zero in both, and keeps DataFusion's function. A `real`
//! is rounded as a `double precision` (PostgreSQL has no `round(real)`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float32Type, Float64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
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

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(args)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

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

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn output_ordering(&self, input: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(input)
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
