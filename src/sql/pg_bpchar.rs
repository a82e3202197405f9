//! `char(n)` (`bpchar`) as PostgreSQL treats it. Values are kept without
//! their trailing spaces (so `length`, `||`, `LIKE` and comparisons between
//! `char` values need nothing special) and padded to `n` when they leave:
//! sent to a client, printed, copied out ([`pad_batch`]). This analyzer
//! rule (after type coercion) does the rest:
//!
//! - `CAST(x AS char(n))` truncates to `n` characters (`'abcdefg'::char(3)`
//!   is `abc`) and carries the type, so the value is padded when shown;
//!   bare `char` is `char(1)`, `bpchar` has no length; `CAST(x AS
//!   varchar(n))` truncates too;
//! - a `char` compared with text ignores the text's trailing spaces
//!   (`x = 'ab  '` is true for `'ab'`), as the text is read as a `char`;
//! - `octet_length` and `concat` see the padded value, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::engine::types::{character_field, declared_length, TaggedType};

/// Whether a field is a `char(n)`, and its `n`.
fn bpchar_of(field: &Field) -> Option<Option<usize>> {
    (TaggedType::of(field) == Some(TaggedType::Bpchar)).then(|| declared_length(field))
}

/// `value` padded with spaces to `n` characters.
fn padded(value: &str, n: usize) -> std::borrow::Cow<'_, str> {
    let chars = value.chars().count();
    if chars >= n {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + n - chars);
    out.push_str(value);
    out.extend(std::iter::repeat_n(' ', n - chars));
    out.into()
}

/// The batch with its `char(n)` columns (as `schema` declares them) padded
/// to their length, as PostgreSQL shows them.
pub fn pad_batch(
    batch: RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let lengths: Vec<Option<usize>> = schema
        .fields()
        .iter()
        .map(|f| bpchar_of(f).flatten())
        .collect();
    if lengths.iter().all(Option::is_none) {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(&lengths)
        .map(|(column, length)| match (length, column.data_type()) {
            (Some(n), DataType::Utf8) => {
                let strings = column.as_string::<i32>();
                let out: StringArray = strings.iter().map(|v| v.map(|v| padded(v, *n))).collect();
                Arc::new(out) as ArrayRef
            }
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
}

/// `CAST(x AS char(n))` (at most `n` characters, trailing spaces
/// dropped) and `CAST(x AS varchar(n))` (at most `n` characters).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToCharacter {
    tag: TaggedType,
    length: Option<usize>,
    signature: Signature,
}

fn to_character(tag: TaggedType, length: Option<usize>, value: Expr) -> Expr {
    ScalarUDF::new_from_impl(ToCharacter {
        tag,
        length,
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
    })
    .call(vec![value])
}

impl ScalarUDFImpl for ToCharacter {
    fn name(&self) -> &str {
        self.tag.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(
            character_field(self.tag, self.length).with_name(self.tag.name()),
        ))
    }

    /// Named as the cast it replaces.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let strings = input.as_string::<i32>();
        let out: StringArray = strings
            .iter()
            .map(|v| {
                v.map(|v| {
                    let kept = match self.length {
                        Some(n) => match v.char_indices().nth(n) {
                            Some((at, _)) => &v[..at],
                            None => v,
                        },
                        None => v,
                    };
                    match self.tag {
                        TaggedType::Bpchar => kept.trim_end_matches(' '),
                        _ => kept,
                    }
                })
            })
            .collect();
        let result: ArrayRef = Arc::new(out);
        super::pg_timezone::columnar(result, scalar)
    }
}

/// The rule (see the module comment).
#[derive(Debug, Default)]
pub struct Bpchar;

impl AnalyzerRule for Bpchar {
    fn name(&self) -> &str {
        "pg_bpchar"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                super::pg_arithmetic::rewrite_expressions(node, |expr, schema| {
                    expr.transform_up(|e| bpchar(e, schema))
                })
            })?
            .data)
    }
}

fn call(name: &str, args: Vec<Expr>) -> Result<Expr> {
    let udf = match name {
        "rtrim" => datafusion::functions::string::rtrim(),
        "rpad" => datafusion::functions::unicode::rpad(),
        _ => return Err(DataFusionError::Internal(format!("no function {name}"))),
    };
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(udf, args)))
}

fn bpchar(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let kind = |e: &Expr| e.to_field(schema).ok().and_then(|(_, f)| bpchar_of(&f));
    let text = |e: &Expr| {
        matches!(
            e.get_type(schema),
            Ok(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
        )
    };
    let space = || Expr::Literal(ScalarValue::Utf8(Some(" ".into())), None);
    let pad = |e: Expr| -> Result<Expr> {
        match kind(&e) {
            Some(Some(n)) => call(
                "rpad",
                vec![
                    e,
                    Expr::Literal(ScalarValue::Int64(Some(n as i64)), None),
                    space(),
                ],
            ),
            _ => Ok(e),
        }
    };
    match expr {
        Expr::Cast(Cast { expr: inner, field })
            if matches!(
                TaggedType::of(&field),
                Some(TaggedType::Bpchar | TaggedType::Varchar)
            ) =>
        {
            let tag = TaggedType::of(&field).expect("matched");
            let length = declared_length(&field);
            let inner = match text(&inner) {
                true => *inner,
                false => Expr::Cast(Cast::new(inner, DataType::Utf8)),
            };
            Ok(Transformed::yes(to_character(tag, length, inner)))
        }
        // `jsonb_col::text`, `uuid_col::text`, `varchar_col::text`: a cast
        // to the Arrow type a value already has keeps its field's metadata
        // (DataFusion's "type-only" cast), so the result would still be
        // reported as jsonb, uuid or varchar(n). A named target field
        // makes it plain text.
        Expr::Cast(Cast { expr: inner, field })
            if field.metadata().is_empty()
                && field.name().is_empty()
                && *field.data_type() == DataType::Utf8
                && inner.to_field(schema).is_ok_and(|(_, f)| {
                    *f.data_type() == DataType::Utf8
                        && f.metadata().keys().any(|k| k.starts_with("quiver."))
                }) =>
        {
            let text = Arc::new(Field::new("text", DataType::Utf8, field.is_nullable()));
            Ok(Transformed::yes(Expr::Cast(Cast {
                expr: inner,
                field: text,
            })))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if super::pg_arithmetic::is_comparison(op)
                && (kind(&left).is_some() != kind(&right).is_some()) =>
        {
            let trim = |e: Box<Expr>| -> Result<Box<Expr>> {
                if kind(&e).is_none() && text(&e) {
                    Ok(Box::new(call("rtrim", vec![*e, space()])?))
                } else {
                    Ok(e)
                }
            };
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                left: trim(left)?,
                op,
                right: trim(right)?,
            })))
        }
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "octet_length" | "concat" | "concat_ws")
                && f.args.iter().any(|a| matches!(kind(a), Some(Some(_)))) =>
        {
            f.args = f.args.into_iter().map(pad).collect::<Result<_>>()?;
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pad_to_their_length() {
        assert_eq!(padded("ab", 5), "ab   ");
        assert_eq!(padded("äb", 3), "äb ");
        assert_eq!(padded("abcde", 3), "abcde");
    }
}
