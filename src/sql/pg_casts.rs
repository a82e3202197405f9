//! Postgres semantics for casts DataFusion does differently.
//!
//! DataFusion casts text to bytea by taking the string's bytes; Postgres
//! parses the text form (`'\x0102'::bytea` is two bytes). Arrow's interval
//! parser does not read `1 day 02:03:04`, which is how Postgres prints
//! intervals. We rewrite those casts in every plan into `pg_bytea_in` and
//! `pg_interval_in`. Remove when DataFusion can be told which cast
//! semantics to use.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, IntervalMonthDayNanoArray,
};
use datafusion::arrow::compute::kernels::cast_utils::parse_interval_month_day_nano;
use datafusion::arrow::datatypes::{DataType, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DataFusionError;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{
    create_udf, BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

pub const BYTEA_IN: &str = "pg_bytea_in";
pub const INTERVAL_IN: &str = "pg_interval_in";

/// The `pg_interval_in(text) -> interval` function.
pub fn interval_in_udf() -> ScalarUDF {
    create_udf(
        INTERVAL_IN,
        vec![DataType::Utf8],
        DataType::Interval(IntervalUnit::MonthDayNano),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let strings = arrays[0].as_string::<i32>();
            let values = strings
                .iter()
                .map(|v| v.map(parse_interval).transpose())
                .collect::<Result<IntervalMonthDayNanoArray, _>>()?;
            let array: ArrayRef = Arc::new(values);
            Ok(ColumnarValue::Array(array))
        }),
    )
}

/// Postgres interval text: Arrow's parser after turning `[-]HH:MM[:SS[.f]]`
/// into units and Postgres' unit abbreviations into full names.
pub(crate) fn parse_interval(text: &str) -> datafusion::error::Result<IntervalMonthDayNano> {
    let mut words = Vec::new();
    let mut tokens: Vec<&str> = text.split_whitespace().collect();
    // PostgreSQL's verbose form: `@ 1 day 2 hours ago`.
    if tokens.first() == Some(&"@") {
        tokens.remove(0);
    }
    let ago = tokens.len() > 1 && tokens.last().is_some_and(|t| t.eq_ignore_ascii_case("ago"));
    if ago {
        tokens.pop();
    }
    for token in tokens {
        // `+2 hours` (PostgreSQL's output writes `-1 days +02:00:00`).
        let token = match token.strip_prefix('+') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') => rest,
            _ => token,
        };
        if token.contains(':') {
            let (sign, body) = match token.strip_prefix('-') {
                Some(rest) => ("-", rest),
                None => ("", token.strip_prefix('+').unwrap_or(token)),
            };
            let parts: Vec<&str> = body.split(':').collect();
            let units = ["hours", "minutes", "seconds"];
            if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(invalid_interval(text));
            }
            for (value, unit) in parts.iter().zip(units) {
                words.push(format!("{sign}{value} {unit}"));
            }
        } else {
            let lower = token.to_ascii_lowercase();
            let word = match lower.as_str() {
                "mon" | "mons" => "months",
                "yr" | "yrs" => "years",
                "hr" | "hrs" => "hours",
                "min" | "mins" => "minutes",
                "sec" | "secs" => "seconds",
                _ => token,
            };
            words.push(word.to_string());
        }
    }
    let value =
        parse_interval_month_day_nano(&words.join(" ")).map_err(|_| invalid_interval(text))?;
    Ok(match ago {
        true => IntervalMonthDayNano::new(-value.months, -value.days, -value.nanoseconds),
        false => value,
    })
}

fn invalid_interval(text: &str) -> DataFusionError {
    DataFusionError::Execution(format!(
        "invalid input syntax for type interval: \"{text}\""
    ))
}

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
                        DataFusionError::Execution(format!(
                            "invalid input syntax for type bytea: {msg}"
                        ))
                    })?),
                }
            }
            let array: ArrayRef = Arc::new(out.finish());
            Ok(ColumnarValue::Array(array))
        }),
    )
}

/// The functions that casts from text are rewritten into.
#[derive(Debug, Clone)]
pub struct TextCasts {
    bytea_in: Arc<ScalarUDF>,
    interval_in: Arc<ScalarUDF>,
    array_in: Arc<ScalarUDF>,
}

impl Default for TextCasts {
    fn default() -> Self {
        TextCasts {
            bytea_in: Arc::new(bytea_in_udf()),
            interval_in: Arc::new(interval_in_udf()),
            array_in: Arc::new(super::pg_arrays::array_in_udf()),
        }
    }
}

impl TextCasts {
    pub fn register(&self, ctx: &datafusion::prelude::SessionContext) {
        for udf in [&self.bytea_in, &self.interval_in, &self.array_in] {
            ctx.register_udf(udf.as_ref().clone());
        }
    }
}

/// Rewrites text-to-bytea, text-to-interval and text-to-array casts in
/// `plan` (and its subqueries).
pub fn rewrite_text_casts(
    plan: LogicalPlan,
    casts: &TextCasts,
) -> datafusion::error::Result<LogicalPlan> {
    let TextCasts {
        bytea_in,
        interval_in,
        array_in,
    } = casts;
    plan.transform_up_with_subqueries(|node| {
        let schemas: Vec<_> = node.inputs().iter().map(|i| i.schema().clone()).collect();
        // The rewritten expressions keep their names: a node above refers
        // to `count(CAST(...))` by name.
        let names = datafusion::logical_expr::expr_rewriter::NamePreserver::new(&node);
        node.map_expressions(|expr| {
            super::pg_arithmetic::keeping_names(expr, &names, &mut |expr| {
                expr.transform_up(|e| match e {
                    Expr::Cast(Cast { expr, field })
                        if field.data_type() == &DataType::Binary && is_text(&expr, &schemas) =>
                    {
                        Ok(Transformed::yes(bytea_in.call(vec![*expr])))
                    }
                    Expr::Cast(Cast { expr, field })
                        if matches!(
                            field.data_type(),
                            DataType::Interval(IntervalUnit::MonthDayNano)
                        ) && is_text(&expr, &schemas) =>
                    {
                        Ok(Transformed::yes(interval_in.call(vec![*expr])))
                    }
                    // `5::int[]`: Arrow would make a one-element list;
                    // Postgres has no such cast.
                    Expr::Cast(Cast { expr, field })
                        if matches!(field.data_type(), DataType::List(_))
                            && scalar_type(&expr, &schemas).is_some_and(|t| {
                                !matches!(
                                    t,
                                    DataType::List(_)
                                        | DataType::Null
                                        | DataType::Utf8
                                        | DataType::Utf8View
                                        | DataType::LargeUtf8
                                )
                            }) =>
                    {
                        let from = scalar_type(&expr, &schemas).expect("checked");
                        let name = |t: &DataType| {
                            crate::engine::types::display_type(
                                &datafusion::arrow::datatypes::Field::new("", t.clone(), true),
                            )
                        };
                        Err(DataFusionError::Plan(format!(
                            "a value of type {} cannot be cast to {} (it is not an array)",
                            name(&from),
                            name(field.data_type())
                        )))
                    }
                    // `'{1,2}'::int[]`: Arrow would make a one-element list.
                    Expr::Cast(Cast { expr, field })
                        if matches!(field.data_type(), DataType::List(_))
                            && is_text(&expr, &schemas) =>
                    {
                        let target = ScalarValue::try_from(field.data_type())?;
                        let metadata = (!field.metadata().is_empty()).then(|| {
                            datafusion::common::metadata::FieldMetadata::from(
                                field.metadata().clone(),
                            )
                        });
                        Ok(Transformed::yes(
                            array_in.call(vec![*expr, Expr::Literal(target, metadata)]),
                        ))
                    }
                    // `array_cat(a, '{3}')` in a filter: the literal is an array
                    // of the other argument's type (in a select list the
                    // planner has already refused the call).
                    Expr::ScalarFunction(mut call)
                        if ARRAY_PAIR_FUNCTIONS.contains(&call.name())
                            && call.args.len() == 2
                            && call.args.iter().any(is_text_literal) =>
                    {
                        let list = call.args.iter().find_map(|a| list_type(a, &schemas));
                        match list {
                            Some(list) => {
                                for arg in call.args.iter_mut() {
                                    if is_text_literal(arg) {
                                        let text = std::mem::replace(
                                            arg,
                                            Expr::Literal(ScalarValue::Null, None),
                                        );
                                        *arg = array_in.call(vec![
                                            text,
                                            Expr::Literal(ScalarValue::try_from(&list)?, None),
                                        ]);
                                    }
                                }
                                Ok(Transformed::yes(Expr::ScalarFunction(call)))
                            }
                            None => Ok(Transformed::no(Expr::ScalarFunction(call))),
                        }
                    }
                    // `indisprimary = 't'`: a quoted literal takes the type of
                    // the boolean it is compared with, as Postgres' unknown
                    // literals do.
                    Expr::BinaryExpr(BinaryExpr { left, op, right })
                        if matches!(op, Operator::Eq | Operator::NotEq)
                            && (is_bool(&left, &schemas) && bool_literal(&right).is_some()
                                || is_bool(&right, &schemas) && bool_literal(&left).is_some()) =>
                    {
                        let fix = |e: Box<Expr>| match bool_literal(&e) {
                            Some(b) => Box::new(Expr::Literal(ScalarValue::Boolean(Some(b)), None)),
                            None => e,
                        };
                        Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                            left: fix(left),
                            op,
                            right: fix(right),
                        })))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })
        })
    })
    .map(|t| t.data)
}

/// Functions of two arrays whose text literal arguments are arrays of
/// the other argument's type.
const ARRAY_PAIR_FUNCTIONS: &[&str] = &[
    "array_has_any",
    "array_has_all",
    "array_concat",
    "array_cat",
    "array_union",
    "array_intersect",
    "array_except",
];

fn is_text_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Literal(ScalarValue::Utf8(_), _))
}

/// The type of an expression over the node's inputs.
fn scalar_type(expr: &Expr, schemas: &[datafusion::common::DFSchemaRef]) -> Option<DataType> {
    if let Expr::Literal(value, _) = expr {
        return Some(value.data_type());
    }
    schemas.iter().find_map(|s| expr.get_type(s.as_ref()).ok())
}

/// The type of a list-typed expression.
fn list_type(expr: &Expr, schemas: &[datafusion::common::DFSchemaRef]) -> Option<DataType> {
    schemas.iter().find_map(|s| {
        expr.get_type(s.as_ref())
            .ok()
            .filter(|t| matches!(t, DataType::List(_)))
    })
}

fn is_bool(expr: &Expr, schemas: &[datafusion::common::DFSchemaRef]) -> bool {
    schemas.iter().any(|s| {
        expr.get_type(s.as_ref())
            .is_ok_and(|t| t == DataType::Boolean)
    })
}

/// A string literal that spells a boolean the way Postgres reads one.
fn bool_literal(expr: &Expr) -> Option<bool> {
    let Expr::Literal(ScalarValue::Utf8(Some(s)), _) = expr else {
        return None;
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
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
    if let Some(hex) = text
        .strip_prefix("\\x")
        .or_else(|| text.strip_prefix("\\X"))
    {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err("odd number of hex digits".into());
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let s = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
                u8::from_str_radix(s, 16)
                    .map_err(|_| format!("invalid hexadecimal digit in \"{s}\""))
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
        } else if let Some(octal) = bytes
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|b| (b'0'..=b'7').contains(b)))
        {
            let value = (octal[0] - b'0') as u32 * 64
                + (octal[1] - b'0') as u32 * 8
                + (octal[2] - b'0') as u32;
            if value > 255 {
                return Err(format!(
                    "octal escape \\{} out of range",
                    std::str::from_utf8(octal).unwrap_or("?")
                ));
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
    fn postgres_interval_output_parses_back() {
        let v = parse_interval("1 day 02:03:04").unwrap();
        assert_eq!((v.months, v.days), (0, 1));
        assert_eq!(
            v.nanoseconds,
            ((2 * 3600 + 3 * 60 + 4) as i64) * 1_000_000_000
        );
        let v = parse_interval("1 year 2 mons -00:00:01.5").unwrap();
        assert_eq!(v.months, 14);
        assert_eq!(v.nanoseconds, -1_500_000_000);
        assert!(parse_interval("soon").is_err());
        // Signed fields, `@` and `ago`.
        let v = parse_interval("-1 days +02:00:00").unwrap();
        assert_eq!((v.days, v.nanoseconds), (-1, 2 * 3_600_000_000_000));
        let v = parse_interval("+3 hours").unwrap();
        assert_eq!(v.nanoseconds, 3 * 3_600_000_000_000);
        let v = parse_interval("@ 1 day 2 hours ago").unwrap();
        assert_eq!((v.days, v.nanoseconds), (-1, -2 * 3_600_000_000_000));
        assert!(parse_interval("ago").is_err());
    }

    #[test]
    fn hex_and_escape_formats() {
        assert_eq!(parse_bytea("\\x0102ff").unwrap(), vec![1, 2, 255]);
        assert_eq!(parse_bytea("ab\\\\c\\001").unwrap(), b"ab\\c\x01".to_vec());
        assert_eq!(parse_bytea("plain").unwrap(), b"plain".to_vec());
        assert!(parse_bytea("\\x0").is_err());
        assert!(parse_bytea("bad\\q").is_err());
    }
}

/// `pg_typeof(x)`: the name of the type of `x` (`integer`, `numeric`,
/// `timestamp with time zone`), as PostgreSQL's regtype shows it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

pub fn pg_typeof_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(TypeOf {
        signature: Signature::any(1, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for TypeOf {
    fn name(&self) -> &str {
        "pg_typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let field = &args.arg_fields[0];
        let name = match field.data_type() {
            DataType::Null => "unknown".to_string(),
            _ => {
                let name = crate::engine::types::display_type(field);
                // The type without its modifier: numeric(12,2) is numeric.
                match name.split_once('(') {
                    Some((base, rest)) => match rest.split_once(')') {
                        Some((_, after)) => format!("{base}{after}"),
                        None => base.to_string(),
                    },
                    None => name,
                }
            }
        };
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}

/// `pg_named_cast(CAST(x AS t))`: the cast's value, named after the cast
/// (`CAST(t.a AS Int64)`), where DataFusion names a cast like what it
/// casts (see `column_names::separate_cast_aggregates`).
pub fn named_cast_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(NamedCast {
        signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct NamedCast {
    signature: Signature,
}

impl ScalarUDFImpl for NamedCast {
    fn name(&self) -> &str {
        super::column_names::NAMED_CAST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
        Ok(args.arg_fields[0].clone())
    }

    fn schema_name(&self, args: &[Expr]) -> datafusion::error::Result<String> {
        Ok(args[0].to_string())
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}
