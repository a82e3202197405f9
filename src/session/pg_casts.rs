//! Postgres semantics for casts DataFusion does differently.
//!
//! DataFusion casts text to bytea by taking the string's bytes; Postgres
//! parses the text form (`'\x0102'::bytea` is two bytes). We rewrite every
//! Utf8-to-Binary cast in a plan into `pg_bytea_in`, which reads the hex
//! (`\x...`) and escape (`\123`, `\\`) formats. Remove when DataFusion can
//! be told which cast semantics to use.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::{
    create_udf, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, Volatility,
};

pub const BYTEA_IN: &str = "pg_bytea_in";

/// The `pg_bytea_in(text) -> bytea` function.
pub fn bytea_in_udf() -> ScalarUDF {
    create_udf(
        BYTEA_IN,
        vec![DataType::Utf8],
        DataType::Binary,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let strings = arrays[0].as_string::<i32>();
            let mut out = BinaryBuilder::with_capacity(strings.len(), strings.value_data().len());
            for value in strings.iter() {
                match value {
                    None => out.append_null(),
                    Some(text) => out.append_value(parse_bytea(text).map_err(|msg| {
                        DataFusionError::Execution(format!("invalid input syntax for type bytea: {msg}"))
                    })?),
                }
            }
            let array: ArrayRef = Arc::new(out.finish());
            Ok(ColumnarValue::Array(array))
        }),
    )
}

/// Rewrites text-to-bytea casts in `plan` (and its subqueries).
pub fn rewrite_bytea_casts(plan: LogicalPlan, bytea_in: &Arc<ScalarUDF>) -> datafusion::error::Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let schemas: Vec<_> = node.inputs().iter().map(|i| i.schema().clone()).collect();
        node.map_expressions(|expr| {
            expr.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field })
                    if field.data_type() == &DataType::Binary && is_text(&expr, &schemas) =>
                {
                    Ok(Transformed::yes(bytea_in.call(vec![*expr])))
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
}

fn is_text(expr: &Expr, schemas: &[datafusion::common::DFSchemaRef]) -> bool {
    if let Expr::Literal(value, _) = expr {
        return value.data_type() == DataType::Utf8;
    }
    schemas
        .iter()
        .any(|s| expr.get_type(s.as_ref()).is_ok_and(|t| t == DataType::Utf8))
}

/// Postgres' bytea input: `\x` followed by hex digit pairs, or the escape
/// format where `\\` is a backslash and `\nnn` an octal byte.
pub fn parse_bytea(text: &str) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("\\x").or_else(|| text.strip_prefix("\\X")) {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if digits.len() % 2 != 0 {
            return Err("odd number of hex digits".into());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
                u8::from_str_radix(s, 16).map_err(|_| format!("invalid hexadecimal digit in \"{s}\""))
            })
            .collect();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if let Some(octal) = bytes.get(i + 1..i + 4).filter(|o| o.iter().all(|b| (b'0'..=b'7').contains(b))) {
            let value = (octal[0] - b'0') as u32 * 64 + (octal[1] - b'0') as u32 * 8 + (octal[2] - b'0') as u32;
            if value > 255 {
                return Err(format!("octal escape \\{} out of range", std::str::from_utf8(octal).unwrap_or("?")));
            }
            out.push(value as u8);
            i += 4;
        } else {
            return Err(format!("\"{text}\""));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_escape_formats() {
        assert_eq!(parse_bytea("\\x0102ff").unwrap(), vec![1, 2, 255]);
        assert_eq!(parse_bytea("ab\\\\c\\001").unwrap(), b"ab\\c\x01".to_vec());
        assert_eq!(parse_bytea("plain").unwrap(), b"plain".to_vec());
        assert!(parse_bytea("\\x0").is_err());
        assert!(parse_bytea("bad\\q").is_err());
    }
}
