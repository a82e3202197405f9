//! `upper`, `lower` and `initcap` as PostgreSQL computes them in a UTF-8
//! locale: one character at a time (`towupper`, `towlower`), so a letter
//! whose case has no single character stays as it is (`upper('ß')` is
//! `ß`, where Rust's `str::to_uppercase` gives `SS`) and a capital sigma
//! is always `σ` (Rust's `str::to_lowercase` writes `ς` at a word's end).
//! And `text ^@ prefix`, PostgreSQL's operator for `starts_with`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// Plans `a ^@ b` as `starts_with(a, b)` (DataFusion's planner refuses
/// the operator).
#[derive(Debug, Default)]
pub(crate) struct StartsWith;

impl ExprPlanner for StartsWith {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        _: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::PGStartsWith {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(
            datafusion::functions::string::starts_with().call(vec![expr.left, expr.right]),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Case {
    Upper,
    Lower,
    Initcap,
}

/// The three functions and `to_hex`, replacing DataFusion's of the same
/// names.
pub fn udfs() -> Vec<ScalarUDF> {
    let to_hex = ScalarUDF::new_from_impl(ToHex {
        signature: Signature::uniform(
            1,
            vec![DataType::Int32, DataType::Int64],
            Volatility::Immutable,
        ),
    });
    [Case::Upper, Case::Lower, Case::Initcap]
        .into_iter()
        .map(|case| {
            ScalarUDF::new_from_impl(CaseMap {
                case,
                signature: Signature::one_of(
                    vec![
                        TypeSignature::Exact(vec![DataType::Utf8]),
                        TypeSignature::Exact(vec![DataType::Utf8View]),
                        TypeSignature::Exact(vec![DataType::LargeUtf8]),
                    ],
                    Volatility::Immutable,
                ),
            })
        })
        .chain(std::iter::once(to_hex))
        .collect()
}

/// `to_hex(n)`: a negative `integer` is written as its 32 bits
/// (`to_hex(-1)` is `ffffffff`), a `bigint` as its 64, as PostgreSQL has
/// one function for each (DataFusion widens to 64 bits).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToHex {
    signature: Signature,
}

impl ScalarUDFImpl for ToHex {
    fn name(&self) -> &str {
        "to_hex"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::datatypes::{Int32Type, Int64Type};
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(args.number_rows)?;
        let out: datafusion::arrow::array::StringArray = match array.data_type() {
            DataType::Int32 => array
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(|v| format!("{:x}", v as u32)))
                .collect(),
            _ => array
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| format!("{:x}", v as u64)))
                .collect(),
        };
        let out: ArrayRef = Arc::new(out);
        super::pg_timezone::columnar(out, scalar)
    }
}

fn upper(c: char) -> char {
    let mut mapped = c.to_uppercase();
    match (mapped.next(), mapped.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

fn lower(c: char) -> char {
    // Only `İ` lowers to two characters (`i` and a combining dot); glibc
    // gives the `i`.
    c.to_lowercase().next().unwrap_or(c)
}

fn map_case(case: Case, text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() && case != Case::Initcap {
        out.push_str(text);
        match case {
            Case::Upper => out.make_ascii_uppercase(),
            _ => out.make_ascii_lowercase(),
        }
        return;
    }
    let mut word = false;
    for c in text.chars() {
        out.push(match (case, word) {
            (Case::Upper, _) | (Case::Initcap, false) => upper(c),
            (Case::Lower, _) | (Case::Initcap, true) => lower(c),
        });
        word = c.is_alphanumeric();
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CaseMap {
    case: Case,
    signature: Signature,
}

impl ScalarUDFImpl for CaseMap {
    fn name(&self) -> &str {
        match self.case {
            Case::Upper => "upper",
            Case::Lower => "lower",
            Case::Initcap => "initcap",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let array = args.args[0].to_array(args.number_rows)?;
        let mut out = StringBuilder::with_capacity(array.len(), 0);
        let mut buffer = String::new();
        let mut push = |text: Option<&str>| match text {
            Some(text) => {
                map_case(self.case, text, &mut buffer);
                out.append_value(&buffer);
            }
            None => out.append_null(),
        };
        match array.data_type() {
            DataType::Utf8View => array.as_string_view().iter().for_each(&mut push),
            DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut push),
            _ => array.as_string::<i32>().iter().for_each(&mut push),
        }
        let out: ArrayRef = Arc::new(out.finish());
        super::pg_timezone::columnar(out, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(case: Case, text: &str) -> String {
        let mut out = String::new();
        map_case(case, text, &mut out);
        out
    }

    #[test]
    fn cases_map_one_character_at_a_time_as_postgresql() {
        // Values as PostgreSQL 15 gives them (lc_ctype C.UTF-8).
        assert_eq!(mapped(Case::Upper, "éΣß straße"), "ÉΣß STRAßE");
        assert_eq!(mapped(Case::Lower, "ΟΔΟΣ İ ÀB"), "οδοσ i àb");
        assert_eq!(
            mapped(Case::Initcap, "élan ßa mcDONALD o'neil"),
            "Élan ßa Mcdonald O'Neil"
        );
        assert_eq!(
            mapped(Case::Initcap, "hello WORLD-foo9bar x"),
            "Hello World-Foo9bar X"
        );
        assert_eq!(mapped(Case::Upper, "abc"), "ABC");
    }
}
