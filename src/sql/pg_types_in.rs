//! Casts to the Postgres types DataFusion's planner does not know (`uuid`,
//! `json`, `jsonb`): `x::uuid` becomes `pg_uuid_in(x)`, which checks the
//! text, normalises it and tags the result so clients see the right type.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::DataFusionError;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, BinaryOperator, DataType as SqlType, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Subscript, Value, VisitMut,
};

use crate::engine::conform::{digits_with_point, normalise_uuid, plain_numeric};
use crate::engine::json;
use crate::engine::types::{TaggedType, PG_TYPE_KEY};

/// `pg_uuid_in`, `pg_json_in`, `pg_jsonb_in`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextTypeIn {
    tag: TaggedType,
    name: String,
    signature: Signature,
}

impl TextTypeIn {
    fn new(tag: TaggedType) -> Self {
        TextTypeIn {
            tag,
            name: function_name(tag).to_string(),
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

fn function_name(tag: TaggedType) -> &'static str {
    match tag {
        TaggedType::Uuid => "pg_uuid_in",
        TaggedType::Json => "pg_json_in",
        _ => "pg_jsonb_in",
    }
}

/// The three cast functions, for registering with a session.
pub fn text_type_udfs() -> Vec<ScalarUDF> {
    [TaggedType::Uuid, TaggedType::Json, TaggedType::Jsonb]
        .into_iter()
        .map(|tag| ScalarUDF::from(TextTypeIn::new(tag)))
        .collect()
}

impl ScalarUDFImpl for TextTypeIn {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let meta = [(PG_TYPE_KEY.to_string(), self.tag.name().to_string())].into();
        Ok(Arc::new(
            Field::new(self.tag.name(), DataType::Utf8, true).with_metadata(meta),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = arrays[0].as_string::<i32>();
        let output: StringArray = input
            .iter()
            .map(|value| {
                value
                    .map(|text| match self.tag {
                        TaggedType::Uuid => normalise_uuid(text),
                        TaggedType::Jsonb => json::jsonb_text(text),
                        _ => json::check_json(text).map(|()| text.to_string()),
                    })
                    .transpose()
                    .map_err(|e| DataFusionError::External(Box::new(e)))
            })
            .collect::<DfResult<_>>()?;
        let array: ArrayRef = Arc::new(output);
        Ok(ColumnarValue::Array(array))
    }
}

/// `gen_random_uuid()`: a version 4 uuid per row (PostgreSQL 13's
/// built-in, what ORMs put in a uuid key's default), tagged as `uuid`.
/// DataFusion's `uuid()` makes the values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct GenRandomUuid {
    signature: Signature,
}

/// `gen_random_uuid`, for registering with a session.
pub fn gen_random_uuid_udf() -> ScalarUDF {
    ScalarUDF::from(GenRandomUuid {
        signature: Signature::nullary(Volatility::Volatile),
    })
}

impl ScalarUDFImpl for GenRandomUuid {
    fn name(&self) -> &str {
        "gen_random_uuid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let tag = TaggedType::Uuid.name();
        let meta = [(PG_TYPE_KEY.to_string(), tag.to_string())].into();
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, false).with_metadata(meta),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        datafusion::functions::string::uuid().invoke_with_args(args)
    }
}

/// Rewrites casts to uuid/json/jsonb in a statement into the functions.
pub fn rewrite_casts(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(s) => {
            let _ = visit_expressions_mut(s.as_mut(), |expr| {
                rewrite_cast(expr);
                rewrite_huge_number(expr);
                rewrite_interval_literal(expr);
                rewrite_at_time_zone(expr);
                rewrite_age_of_one(expr);
                rewrite_prefix_operator(expr);
                super::pg_json::rewrite_aggregate(expr);
                super::pg_ordered_set::rewrite_aggregate(expr);
                rewrite_quantified(expr);
                rewrite_subscripts(expr);
                ControlFlow::<()>::Continue(())
            });
            let _ = s.visit(&mut ScalarFunctionAlias);
        }
        DfStatement::Explain(explain) => rewrite_casts(explain.statement.as_mut()),
        _ => {}
    }
}

/// `FROM generate_series(1, 3) AS g`: in Postgres a function returning one
/// column names that column after the alias (after the function without
/// one: `generate_series`); DataFusion keeps the function's own column
/// name (`value`). Give the alias a column list.
struct ScalarFunctionAlias;

impl datafusion::sql::sqlparser::ast::VisitorMut for ScalarFunctionAlias {
    type Break = ();

    fn pre_visit_table_factor(
        &mut self,
        factor: &mut datafusion::sql::sqlparser::ast::TableFactor,
    ) -> ControlFlow<()> {
        use datafusion::sql::sqlparser::ast::TableFactor;
        // `unnest(a) AS x` (the parser's own form of the call) names its
        // one column after the alias too; unaliased, it is `unnest`.
        if let TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } = factor
        {
            if array_exprs.len() == 1 {
                name_the_column(alias, "unnest");
            }
            return ControlFlow::Continue(());
        }
        if let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality,
            ..
        } = factor
        {
            let function = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.to_ascii_lowercase());
            // The JSON table functions number their rows themselves.
            if *with_ordinality
                && function
                    .as_deref()
                    .is_some_and(|f| super::pg_json::TABLE_FUNCTIONS.contains(&f))
            {
                *with_ordinality = false;
                args.args
                    .push(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                        Value::SingleQuotedString(super::pg_json::ORDINALITY.into()),
                    ))));
            }
            let one_column = [
                "generate_series",
                "range",
                "unnest",
                "jsonb_object_keys",
                "json_object_keys",
            ];
            let Some(function) = function.filter(|f| one_column.contains(&f.as_str())) else {
                return ControlFlow::Continue(());
            };
            name_the_column(alias, &function);
        }
        ControlFlow::Continue(())
    }
}

/// A one-column function in FROM names its column after its alias (or,
/// without one, after the function), as in PostgreSQL.
fn name_the_column(
    alias: &mut Option<datafusion::sql::sqlparser::ast::TableAlias>,
    function: &str,
) {
    use datafusion::sql::sqlparser::ast::{TableAlias, TableAliasColumnDef};
    let alias = alias.get_or_insert_with(|| TableAlias {
        explicit: true,
        name: Ident::new(function),
        columns: vec![],
        at: None,
    });
    if alias.columns.is_empty() {
        alias.columns.push(TableAliasColumnDef {
            name: alias.name.clone(),
            data_type: None,
        });
    }
}

/// A numeric literal beyond what a 38-digit decimal holds (`1e300`,
/// `1e-200`, 40 digits) is a `double precision`: PostgreSQL's numeric has
/// room for it, DataFusion's decimals do not and would refuse the
/// statement.
fn rewrite_huge_number(expr: &mut Expr) {
    let Expr::Value(value) = expr else {
        return;
    };
    let Value::Number(text, _) = &value.value else {
        return;
    };
    // Not ours to judge (the planner says what is wrong with it).
    let Some(literal) = NumberLiteral::parse(text) else {
        return;
    };
    if literal.fits_decimal128() {
        if text.contains(['e', 'E']) {
            value.value = Value::Number(literal.without_exponent(), false);
        }
        return;
    }
    *expr = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(Expr::Value(Value::SingleQuotedString(text.clone()).into())),
        data_type: SqlType::DoublePrecision,
        array: false,
        format: None,
    };
}

/// `INTERVAL '04:05:06.5'` (no unit after the string) as `CAST('04:05:06.5'
/// AS interval)`, which reads every form PostgreSQL prints and reads
/// (DataFusion's own interval literals do not take `HH:MM:SS`).
fn rewrite_interval_literal(expr: &mut Expr) {
    let Expr::Interval(interval) = expr else {
        return;
    };
    let plain = interval.leading_field.is_none()
        && interval.last_field.is_none()
        && interval.leading_precision.is_none()
        && interval.fractional_seconds_precision.is_none();
    let is_string = matches!(
        interval.value.as_ref(),
        Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))
    );
    if !plain || !is_string {
        return;
    }
    let value = std::mem::replace(interval.value.as_mut(), Expr::Value(Value::Null.into()));
    *expr = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(value),
        data_type: SqlType::Interval {
            fields: None,
            precision: None,
        },
        array: false,
        format: None,
    };
}

/// A numeric literal (digits, a point, an exponent) as its digits and
/// where its point falls: `1.5e3` is digits `15`, point 4.
struct NumberLiteral {
    digits: String,
    /// Digits left of the point (negative: zeros after the point first).
    point: i64,
}

impl NumberLiteral {
    fn parse(text: &str) -> Option<NumberLiteral> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let count = |s: &str| s.chars().filter(|c| *c != '_').count() as i64;
        let digits = whole.chars().chain(fraction.chars()).filter(|c| *c != '_');
        Some(NumberLiteral {
            digits: digits.collect(),
            point: count(whole) + exponent,
        })
    }

    /// Whether it is a decimal of at most 38 digits with a scale
    /// DataFusion takes.
    fn fits_decimal128(&self) -> bool {
        let significant = self.digits.trim_start_matches('0').len().max(1) as i64;
        let scale = self.digits.len() as i64 - self.point;
        (-128..=38).contains(&scale)
            && significant.max(scale) <= 38
            && significant - scale.min(0) <= 38
    }

    /// `1.5e3` as `1500.`: the same numeric, written so that DataFusion
    /// reads it with scale 0 (it would give `1e3` a negative scale, which
    /// no client type has) and not as an integer.
    fn without_exponent(&self) -> String {
        let plain = digits_with_point(&self.digits, self.point);
        match plain.contains('.') {
            true => plain,
            false => plain + ".",
        }
    }
}

fn rewrite_cast(expr: &mut Expr) {
    let Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return;
    };
    // `'1e2'::numeric`: Arrow's cast from text reads no exponent.
    if let (SqlType::Numeric(_) | SqlType::Decimal(_) | SqlType::Dec(_), Expr::Value(value)) =
        (&*data_type, inner.as_mut())
    {
        if let Value::SingleQuotedString(text) = &mut value.value {
            if let Some(plain) = plain_numeric(text) {
                *text = plain;
            }
        }
        return;
    }
    let tag = match data_type {
        SqlType::Uuid => TaggedType::Uuid,
        SqlType::JSON => TaggedType::Json,
        SqlType::JSONB => TaggedType::Jsonb,
        SqlType::Custom(name, _) => match name.to_string().to_ascii_lowercase().as_str() {
            "uuid" => TaggedType::Uuid,
            "json" => TaggedType::Json,
            "jsonb" => TaggedType::Jsonb,
            _ => return,
        },
        _ => return,
    };
    let argument = std::mem::replace(inner.as_mut(), Expr::Value(Value::Null.into()));
    *expr = call(function_name(tag), vec![argument]);
}

/// `age(x)` is `age(current_date, x)`: from midnight today (local).
fn rewrite_age_of_one(expr: &mut Expr) {
    let Expr::Function(Function {
        name,
        args: FunctionArguments::List(list),
        ..
    }) = expr
    else {
        return;
    };
    if list.args.len() != 1 || !name.to_string().eq_ignore_ascii_case("age") {
        return;
    }
    let today = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(call("current_date", vec![])),
        data_type: SqlType::Timestamp(None, datafusion::sql::sqlparser::ast::TimezoneInfo::None),
        array: false,
        format: None,
    };
    list.args
        .insert(0, FunctionArg::Unnamed(FunctionArgExpr::Expr(today)));
}

/// PostgreSQL's prefix operators that DataFusion's planner lacks, as the
/// functions they are: `@ x` is `abs(x)`, `|/ x` is `sqrt(x)`, `||/ x` is
/// `cbrt(x)` and `~ x` the bitwise NOT. Column names are taken before
/// this (`?column?`, as PostgreSQL names them).
fn rewrite_prefix_operator(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::UnaryOperator;
    let Expr::UnaryOp { op, expr: operand } = expr else {
        return;
    };
    let function = match op {
        UnaryOperator::PGAbs => "abs",
        UnaryOperator::PGSquareRoot => "sqrt",
        UnaryOperator::PGCubeRoot => "cbrt",
        UnaryOperator::BitwiseNot => super::pg_math::BITWISE_NOT,
        _ => return,
    };
    let operand = std::mem::replace(operand.as_mut(), Expr::Value(Value::Null.into()));
    *expr = call(function, vec![operand]);
}

/// `x AT TIME ZONE z` is PostgreSQL's `timezone(z, x)` (and named so):
/// DataFusion's own reading casts `x` to a zone label, which neither
/// changes a `timestamptz` into a local time nor tells `AT TIME ZONE
/// 'UTC'` from a cast to `timestamptz`.
fn rewrite_at_time_zone(expr: &mut Expr) {
    let Expr::AtTimeZone {
        timestamp,
        time_zone,
    } = expr
    else {
        return;
    };
    let null = || Expr::Value(Value::Null.into());
    let timestamp = std::mem::replace(timestamp.as_mut(), null());
    let zone = std::mem::replace(time_zone.as_mut(), null());
    *expr = call("timezone", vec![zone, timestamp]);
}

/// `x op ANY (array)` and `x op ALL (array)` become `pg_any(x, array,
/// 'op')` / `pg_all(...)`, which give PostgreSQL's answers with NULLs
/// (DataFusion's `array_has` says false where the answer is NULL). ANY
/// and ALL over a subquery are left to DataFusion.
fn rewrite_quantified(expr: &mut Expr) {
    let (left, op, right, function) = match expr {
        Expr::AnyOp {
            left,
            compare_op,
            right,
            ..
        } => (left, compare_op, right, crate::sql::pg_arrays::ANY),
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => (left, compare_op, right, crate::sql::pg_arrays::ALL),
        _ => return,
    };
    if matches!(right.as_ref(), Expr::Subquery(_)) {
        return;
    }
    let Some(op) = crate::sql::pg_arrays::Comparison::of(op) else {
        return;
    };
    let null = || Expr::Value(Value::Null.into());
    let left = std::mem::replace(left.as_mut(), null());
    let right = std::mem::replace(right.as_mut(), null());
    let op = Expr::Value(Value::SingleQuotedString(op.symbol().into()).into());
    *expr = call(function, vec![left, right, op]);
}

/// Subscripts as PostgreSQL reads them. DataFusion counts a negative
/// position from the end (`a[-1]` is the last element; PostgreSQL: NULL,
/// as for any position outside the array), and wants both bounds of a
/// slice (`a[2:]`, `a[:2]`: to the array's end, from its start).
fn rewrite_subscripts(expr: &mut Expr) {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else {
        return;
    };
    let number = |n: &str| Expr::value(Value::Number(n.into(), false));
    let bigint = |e: Expr| Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(e),
        data_type: SqlType::BigInt(None),
        array: false,
        format: None,
    };
    for (i, access) in access_chain.iter_mut().enumerate() {
        match access {
            // `CASE WHEN i >= 1 THEN i END`: NULL below the first position.
            AccessExpr::Subscript(Subscript::Index { index }) if !is_string_literal(index) => {
                let position = std::mem::replace(index, number("1"));
                *index = Expr::Case {
                    case_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    end_token: datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                    operand: None,
                    conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                        condition: Expr::BinaryOp {
                            left: Box::new(position.clone()),
                            op: BinaryOperator::GtEq,
                            right: Box::new(number("1")),
                        },
                        result: position,
                    }],
                    else_result: None,
                };
            }
            // `a[l:u]` is `a[greatest(l, 1):greatest(u, 0)]` (an upper
            // bound past the end is the end already).
            AccessExpr::Subscript(Subscript::Slice {
                lower_bound,
                upper_bound,
                ..
            }) if i == 0 => {
                let lower = lower_bound.take().unwrap_or_else(|| number("1"));
                *lower_bound = Some(call("greatest", vec![lower, number("1")]));
                let upper = upper_bound
                    .take()
                    .unwrap_or_else(|| bigint(call("cardinality", vec![root.as_ref().clone()])));
                *upper_bound = Some(call("greatest", vec![upper, number("0")]));
            }
            _ => {}
        }
    }
}

fn is_string_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
}

/// A call of the function `name`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    super::function_call(name, args, vec![])
}

#[cfg(test)]
mod tests {
    use super::NumberLiteral;

    #[test]
    fn number_literals_as_postgres_reads_them() {
        let plain = |t: &str| NumberLiteral::parse(t).unwrap().without_exponent();
        assert_eq!(plain("1e3"), "1000.");
        assert_eq!(plain("1.5e3"), "1500.");
        assert_eq!(plain("1.5e-3"), "0.0015");
        assert_eq!(plain("123.456e1"), "1234.56");
        assert_eq!(plain("1_000e1"), "10000.");
        let fits = |t: &str| NumberLiteral::parse(t).unwrap().fits_decimal128();
        assert!(fits("12345.6789") && fits("1e3") && fits("1e-20"));
        assert!(!fits("1e300") && !fits("1e-200"));
        assert!(!fits("12345678901234567890123456789012345678901"));
        assert!(NumberLiteral::parse("1e").is_none());
    }
}
