//! PostgreSQL arrays as Arrow lists: the text form (`{1,2,NULL}`,
//! `{"a b","",x}`) read and written, the binary form read, and the cast
//! of text to an array type (`'{1,2}'::int[]`), which DataFusion would
//! read as a one-element list.
//!
//! Values are one-dimensional: a column declared `int[][]` is `int[]`, as
//! it is in PostgreSQL, and a multidimensional value is refused.

use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Datum, ListArray, StringArray,
    StringBuilder, UInt32Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::DFSchema;
use datafusion::common::{exec_err, DataFusionError, ScalarValue};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::{Placeholder, ScalarFunction};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::engine::types::element_field;

pub const ARRAY_IN: &str = "pg_array_in";

/// Why an array's text did not parse.
#[derive(Debug, PartialEq)]
pub enum ArrayTextError {
    Malformed(String),
    /// `{{1,2},{3,4}}`: we keep one dimension.
    Multidimensional,
}

impl ArrayTextError {
    pub fn message(&self, text: &str) -> String {
        match self {
            ArrayTextError::Malformed(detail) => {
                format!("malformed array literal: \"{text}\" ({detail})")
            }
            ArrayTextError::Multidimensional => {
                format!("multidimensional arrays are not supported: \"{text}\"")
            }
        }
    }
}

/// PostgreSQL's whitespace inside array text (array_isspace).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

/// The elements of an array's text form, in order (None: NULL). Accepts
/// an optional `[1:n]=` dimension decoration whose lower bound is 1.
pub fn parse_array_text(text: &str) -> Result<Vec<Option<String>>, ArrayTextError> {
    let malformed = |detail: &str| ArrayTextError::Malformed(detail.to_string());
    let mut rest = text.trim_start_matches(is_space);
    let mut declared_len = None;
    if let Some(decorated) = rest.strip_prefix('[') {
        let (bounds, after) = decorated
            .split_once(']')
            .ok_or_else(|| malformed("missing \"]\" in array dimensions"))?;
        let (lower, upper) = bounds
            .split_once(':')
            .map(|(l, u)| (l.trim(), u.trim()))
            .unwrap_or(("1", bounds.trim()));
        let (lower, upper): (i64, i64) = match (lower.parse(), upper.parse()) {
            (Ok(l), Ok(u)) => (l, u),
            _ => {
                return Err(malformed(
                    "\"[\" must introduce explicitly-specified array dimensions",
                ))
            }
        };
        if after.trim_start_matches(is_space).starts_with('[') {
            return Err(ArrayTextError::Multidimensional);
        }
        if lower != 1 {
            return Err(malformed("arrays here always start at index 1"));
        }
        if upper < lower - 1 {
            return Err(malformed("upper bound cannot be less than lower bound"));
        }
        declared_len = Some((upper - lower + 1) as usize);
        rest = after
            .trim_start_matches(is_space)
            .strip_prefix('=')
            .ok_or_else(|| malformed("missing assignment operator"))?
            .trim_start_matches(is_space);
    }
    let mut chars = rest
        .strip_prefix('{')
        .ok_or_else(|| malformed("array value must start with \"{\" or dimension information"))?
        .chars()
        .peekable();
    let mut elements = Vec::new();
    // Skip whitespace before the first element; `{}` is the empty array.
    while chars.peek().copied().is_some_and(is_space) {
        chars.next();
    }
    let mut closed = chars.peek() == Some(&'}');
    if closed {
        chars.next();
    }
    while !closed {
        let mut value = String::new();
        let mut quoted = false;
        // Length of `value` up to its last character that was quoted or
        // escaped: trailing whitespace after it is the element's own.
        let mut kept = 0;
        loop {
            let c = chars
                .next()
                .ok_or_else(|| malformed("unexpected end of input"))?;
            match c {
                '"' => {
                    if quoted || !value.trim_matches(is_space).is_empty() {
                        return Err(malformed("unexpected \"\"\" character"));
                    }
                    value.clear();
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err(malformed("unexpected end of input")),
                            Some('"') => break,
                            Some('\\') => value.push(
                                chars
                                    .next()
                                    .ok_or_else(|| malformed("unexpected end of input"))?,
                            ),
                            Some(c) => value.push(c),
                        }
                    }
                    kept = value.len();
                }
                '\\' => {
                    if quoted {
                        return Err(malformed("unexpected \"\\\" character"));
                    }
                    value.push(
                        chars
                            .next()
                            .ok_or_else(|| malformed("unexpected end of input"))?,
                    );
                    kept = value.len();
                }
                '{' => {
                    return Err(if value.trim_matches(is_space).is_empty() && !quoted {
                        ArrayTextError::Multidimensional
                    } else {
                        malformed("unexpected \"{\" character")
                    })
                }
                ',' | '}' => {
                    closed = c == '}';
                    break;
                }
                c if quoted => {
                    if !is_space(c) {
                        return Err(malformed("incorrectly quoted array element"));
                    }
                }
                c => {
                    if value.is_empty() && is_space(c) {
                        continue;
                    }
                    value.push(c);
                }
            }
        }
        if quoted {
            elements.push(Some(value));
            continue;
        }
        // Unquoted: trailing whitespace that was not escaped goes.
        let end = value.trim_end_matches(is_space).len().max(kept);
        value.truncate(end);
        if value.is_empty() && kept == 0 {
            return Err(malformed("unexpected \",\" or \"}\" character"));
        }
        if kept == 0 && value.eq_ignore_ascii_case("NULL") {
            elements.push(None);
        } else {
            elements.push(Some(value));
        }
    }
    if chars.any(|c| !is_space(c)) {
        return Err(malformed("junk after closing right brace"));
    }
    if let Some(n) = declared_len {
        if n != elements.len() {
            return Err(malformed(
                "specified array dimensions do not match array contents",
            ));
        }
    }
    Ok(elements)
}

/// Appends one element's text to an array's text form, quoted when
/// PostgreSQL would quote it (empty, `NULL`, delimiters, quotes,
/// backslashes or whitespace).
pub fn push_element(out: &mut String, element: Option<&str>) {
    let Some(text) = element else {
        out.push_str("NULL");
        return;
    };
    let needs_quotes = text.is_empty()
        || text.eq_ignore_ascii_case("NULL")
        || text
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || is_space(c));
    if !needs_quotes {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// An array's text form from its elements' text forms.
pub fn array_text<'a>(elements: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut out = String::from("{");
    for (i, element) in elements.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_element(&mut out, element);
    }
    out.push('}');
    out
}

/// Where an element that did not read came from: the array's row and the
/// element's own message.
pub struct BadElement {
    pub row: usize,
    pub message: String,
}

/// Array texts (None: NULL) into a list column of `field`'s type; the
/// elements are read by `read_elements` (the element type's text input).
pub fn lists_from_text(
    field: &Field,
    values: &StringArray,
    read_elements: impl FnOnce(&Field, &StringArray) -> Result<ArrayRef, BadElement>,
) -> Result<ArrayRef, BadElement> {
    let DataType::List(item) = field.data_type() else {
        unreachable!("lists_from_text of a {} column", field.data_type())
    };
    let element = element_field(field).expect("a list");
    let mut texts = StringBuilder::new();
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i32);
    let mut rows_of_elements = Vec::new();
    for (row, value) in values.iter().enumerate() {
        if let Some(text) = value {
            let elements = parse_array_text(text).map_err(|e| BadElement {
                row,
                message: e.message(text),
            })?;
            for element in &elements {
                texts.append_option(element.as_deref());
                rows_of_elements.push(row);
            }
        }
        offsets.push(rows_of_elements.len() as i32);
    }
    let elements = read_elements(&element, &texts.finish()).map_err(|bad| BadElement {
        row: rows_of_elements.get(bad.row).copied().unwrap_or(0),
        message: bad.message,
    })?;
    let list = ListArray::try_new(
        item.clone(),
        OffsetBuffer::new(offsets.into()),
        elements,
        values.nulls().cloned(),
    )?;
    Ok(Arc::new(list))
}

impl From<datafusion::arrow::error::ArrowError> for BadElement {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        BadElement {
            row: 0,
            message: e.to_string(),
        }
    }
}

/// Array texts as a list column of `field`'s type, read as COPY reads
/// them (the element type's text input, in UTC).
fn read_lists(field: &Field, texts: &StringArray) -> DfResult<ArrayRef> {
    super::column_from_text(field, texts, crate::engine::types::UTC, Default::default())
        .map_err(|bad| DataFusionError::Execution(bad.message))
}

/// An array's binary form (as a bind parameter or in binary COPY): the
/// number of dimensions, a has-nulls flag, the element type's oid, per
/// dimension its length and lower bound, then each element length-prefixed
/// (-1: NULL) and decoded by `decode_element`. The list holds `element`'s
/// type.
pub fn decode_array_binary(
    element: &Field,
    bytes: &[u8],
    decode_element: impl Fn(&Field, &[u8]) -> Result<ScalarValue, String>,
) -> Result<ScalarValue, String> {
    let wrong = || "incorrect binary data format for an array".to_string();
    let mut at = 0usize;
    let int = |at: &mut usize| -> Result<i32, String> {
        let word = bytes.get(*at..*at + 4).ok_or_else(wrong)?;
        *at += 4;
        Ok(i32::from_be_bytes(word.try_into().expect("4 bytes")))
    };
    let dimensions = int(&mut at)?;
    let _has_nulls = int(&mut at)?;
    let _element_oid = int(&mut at)?;
    let len = match dimensions {
        0 => 0,
        1 => {
            let len = int(&mut at)?;
            let _lower_bound = int(&mut at)?;
            usize::try_from(len).map_err(|_| wrong())?
        }
        n if n > 1 => return Err("multidimensional arrays are not supported".into()),
        _ => return Err(wrong()),
    };
    let mut values = Vec::with_capacity(len);
    for _ in 0..len {
        let size = int(&mut at)?;
        if size == -1 {
            values.push(ScalarValue::try_from(element.data_type()).map_err(|e| e.to_string())?);
            continue;
        }
        let size = usize::try_from(size).map_err(|_| wrong())?;
        let value = bytes.get(at..at + size).ok_or_else(wrong)?;
        at += size;
        values.push(decode_element(element, value)?);
    }
    if at != bytes.len() {
        return Err(wrong());
    }
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(
        &values,
        element.data_type(),
    )))
}

/// `pg_array_in(text, target)`: text in PostgreSQL's array form as a list
/// of `target`'s type (the second argument is a typed NULL that only
/// carries the type). Casts of text to an array type are rewritten into
/// it (`pg_casts::rewrite_text_casts`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ArrayIn {
    signature: Signature,
}

pub fn array_in_udf() -> ScalarUDF {
    ScalarUDF::from(ArrayIn {
        signature: Signature::any(2, Volatility::Immutable),
    })
}

impl ScalarUDFImpl for ArrayIn {
    fn name(&self) -> &str {
        ARRAY_IN
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(args[1].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let target = &args.arg_fields[1];
        Ok(Arc::new(
            Field::new(ARRAY_IN, target.data_type().clone(), true)
                .with_metadata(target.metadata().clone()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let target = args.return_field.as_ref().clone();
        if !matches!(target.data_type(), DataType::List(_)) {
            return exec_err!(
                "{ARRAY_IN} casts to arrays only, not {}",
                target.data_type()
            );
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let texts = match arrays[0].data_type() {
            DataType::Utf8 => arrays[0].as_string::<i32>().clone(),
            DataType::Null => {
                return Ok(ColumnarValue::Array(new_null_array(
                    target.data_type(),
                    arrays[0].len(),
                )))
            }
            _ => datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?
                .as_string::<i32>()
                .clone(),
        };
        Ok(ColumnarValue::Array(read_lists(&target, &texts)?))
    }
}

/// Array operators as PostgreSQL reads them, planned before DataFusion's
/// own: a quoted literal beside an array is an array of that type (`a =
/// '{1,2}'`, `a @> '{1}'`, `a || '{3}'`; DataFusion would compare with
/// text), and `&&` is overlap (`array_has_any`).
#[derive(Debug, Default)]
pub struct ArrayOperators;

impl ExprPlanner for ArrayOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> DfResult<PlannerResult<RawBinaryExpr>> {
        let list = |e: &Expr| {
            e.get_type(schema)
                .ok()
                .filter(|t| matches!(t, DataType::List(_)))
        };
        let RawBinaryExpr { op, left, right } = expr;
        // `a @> $1`: the parameter is an array of `a`'s type (DataFusion
        // infers parameter types of comparisons only).
        let typed = |e: Expr, t: &DataType| match e {
            Expr::Placeholder(Placeholder { id, field: None }) => Expr::Placeholder(Placeholder {
                id,
                field: Some(Arc::new(Field::new("", t.clone(), true))),
            }),
            other => other,
        };
        let (left, right) = match (list(&left), list(&right)) {
            (Some(t), None) if is_text_literal(&right) => {
                let right = array_literal(right, &t)?;
                (left, right)
            }
            (None, Some(t)) if is_text_literal(&left) => (array_literal(left, &t)?, right),
            (Some(t), None) => (left, typed(right, &t)),
            (None, Some(t)) => (typed(left, &t), right),
            _ => (left, right),
        };
        let arrays = list(&left).is_some() && list(&right).is_some();
        let nested = |f: Arc<ScalarUDF>, args: Vec<Expr>| {
            Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(f, args),
            )))
        };
        let contains = || Arc::new(ScalarUDF::from(Containment::new(Contains)));
        match op {
            BinaryOperator::PGOverlap if arrays => nested(
                Arc::new(ScalarUDF::from(Containment::new(Overlaps))),
                vec![left, right],
            ),
            BinaryOperator::AtArrow if arrays => nested(contains(), vec![left, right]),
            BinaryOperator::ArrowAt if arrays => nested(contains(), vec![right, left]),
            op if arrays && Comparison::of(&op).is_some() => nested(
                Arc::new(ScalarUDF::from(ArrayComparison {
                    op: Comparison::of(&op).expect("checked"),
                    signature: Signature::arrays(2, None, Volatility::Immutable),
                })),
                vec![left, right],
            ),
            op => Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        }
    }
}

/// `a @> b` (every element of `b` is in `a`) and `a && b` (they share an
/// element), as PostgreSQL compares: a NULL element matches nothing, so
/// `ARRAY[1,NULL] @> ARRAY[NULL]` is false (DataFusion's `array_has_all`
/// says true).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Containment {
    test: Test,
    signature: Signature,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Test {
    Contains,
    Overlaps,
}
use Test::{Contains, Overlaps};

impl Containment {
    fn new(test: Test) -> Self {
        Containment {
            test,
            signature: Signature::arrays(2, None, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Containment {
    fn name(&self) -> &str {
        match self.test {
            Contains => "pg_array_contains",
            Overlaps => "pg_array_overlaps",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::row::{RowConverter, SortField};
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (a, b) = (arrays[0].as_list::<i32>(), arrays[1].as_list::<i32>());
        let converter = RowConverter::new(vec![SortField::new(a.value_type())])?;
        let a_rows = converter.convert_columns(std::slice::from_ref(a.values()))?;
        let b_rows = converter.convert_columns(&[datafusion::arrow::compute::cast(
            b.values(),
            &a.value_type(),
        )?])?;
        let range = |list: &ListArray, i: usize| {
            let offsets = list.value_offsets();
            offsets[i] as usize..offsets[i + 1] as usize
        };
        let out: datafusion::arrow::array::BooleanArray = (0..a.len())
            .map(|i| {
                if a.is_null(i) || b.is_null(i) {
                    return None;
                }
                let present: std::collections::HashSet<_> = range(a, i)
                    .filter(|&j| a.values().is_valid(j))
                    .map(|j| a_rows.row(j))
                    .collect();
                let mut found =
                    range(b, i).map(|j| b.values().is_valid(j) && present.contains(&b_rows.row(j)));
                Some(match self.test {
                    Contains => found.all(|f| f),
                    Overlaps => found.any(|f| f),
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The comparison operators, as `pg_any`/`pg_all` take them by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Comparison {
    pub fn of(op: &BinaryOperator) -> Option<Comparison> {
        Some(match op {
            BinaryOperator::Eq => Comparison::Eq,
            BinaryOperator::NotEq => Comparison::NotEq,
            BinaryOperator::Lt => Comparison::Lt,
            BinaryOperator::LtEq => Comparison::LtEq,
            BinaryOperator::Gt => Comparison::Gt,
            BinaryOperator::GtEq => Comparison::GtEq,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::NotEq => "<>",
            Comparison::Lt => "<",
            Comparison::LtEq => "<=",
            Comparison::Gt => ">",
            Comparison::GtEq => ">=",
        }
    }

    fn named(symbol: &str) -> Option<Comparison> {
        [
            Comparison::Eq,
            Comparison::NotEq,
            Comparison::Lt,
            Comparison::LtEq,
            Comparison::Gt,
            Comparison::GtEq,
        ]
        .into_iter()
        .find(|c| c.symbol() == symbol)
    }

    /// Element-wise comparison, NULL where either side is NULL.
    fn compare(self, left: &dyn Datum, right: &dyn Datum) -> DfResult<BooleanArray> {
        use datafusion::arrow::compute::kernels::cmp;
        Ok(match self {
            Comparison::Eq => cmp::eq(left, right)?,
            Comparison::NotEq => cmp::neq(left, right)?,
            Comparison::Lt => cmp::lt(left, right)?,
            Comparison::LtEq => cmp::lt_eq(left, right)?,
            Comparison::Gt => cmp::gt(left, right)?,
            Comparison::GtEq => cmp::gt_eq(left, right)?,
        })
    }

    fn holds(self, order: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Comparison::Eq => order == Equal,
            Comparison::NotEq => order != Equal,
            Comparison::Lt => order == Less,
            Comparison::LtEq => order != Greater,
            Comparison::Gt => order == Greater,
            Comparison::GtEq => order != Less,
        }
    }
}

/// `x op ANY (array)` and `x op ALL (array)` (`pg_any(x, array, 'op')`,
/// `pg_all(...)`) with SQL's three-valued logic, as PostgreSQL computes
/// them: ANY is true if some comparison is true, else NULL if some was
/// NULL (a NULL element, or a NULL `x` over a non-empty array), else
/// false; ALL the other way round. Over an empty array ANY is false and
/// ALL true. The array may be given as text (`x = ANY('{1,2}')`), read
/// as an array of `x`'s type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Quantified {
    all: bool,
    signature: Signature,
}

pub const ANY: &str = "pg_any";
pub const ALL: &str = "pg_all";

impl Quantified {
    fn new(all: bool) -> Self {
        Quantified {
            all,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Quantified {
    fn name(&self) -> &str {
        if self.all {
            ALL
        } else {
            ANY
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        let [x, array, op] = args else {
            return exec_err!("{} takes a value, an array and an operator", self.name());
        };
        let op = match op {
            DataType::Null => DataType::Utf8,
            other => other.clone(),
        };
        let list_of =
            |t: &DataType| DataType::List(Arc::new(Field::new_list_field(t.clone(), true)));
        Ok(match array {
            DataType::List(item) => {
                let element = item.data_type();
                let common = match x {
                    DataType::Null => element.clone(),
                    x => datafusion::logical_expr::type_coercion::binary::comparison_coercion(
                        x, element,
                    )
                    .ok_or_else(|| {
                        DataFusionError::Plan(format!(
                            "operator does not exist: {} {} ANY ({}[])",
                            x, op, element
                        ))
                    })?,
                };
                vec![common.clone(), list_of(&common), op]
            }
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null => {
                let x = match x {
                    DataType::Null => DataType::Utf8,
                    x => x.clone(),
                };
                vec![x, DataType::Utf8, op]
            }
            other => {
                return Err(DataFusionError::Plan(format!(
                    "op ANY/ALL (array) requires array on right side, not {other}"
                )))
            }
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let ColumnarValue::Scalar(ScalarValue::Utf8(Some(op))) = &args.args[2] else {
            return exec_err!("{}: the operator must be a constant", self.name());
        };
        let Some(op) = Comparison::named(op) else {
            return exec_err!("{}: unknown operator {op}", self.name());
        };
        let x = args.args[0].to_array(rows)?;
        let array = args.args[1].to_array(rows)?;
        let array = match array.data_type() {
            DataType::List(_) => array,
            _ => {
                let texts = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
                let field = Field::new(
                    "",
                    DataType::List(Arc::new(Field::new_list_field(x.data_type().clone(), true))),
                    true,
                );
                read_lists(&field, texts.as_string::<i32>())?
            }
        };
        let lists = array.as_list::<i32>();
        // Each element beside the value of its row, compared at once.
        let mut rows_of = Vec::new();
        let mut positions = Vec::new();
        for row in 0..rows {
            if lists.is_valid(row) {
                let offsets = lists.value_offsets();
                for at in offsets[row]..offsets[row + 1] {
                    rows_of.push(row as u32);
                    positions.push(at as u32);
                }
            }
        }
        let values = take(lists.values(), &UInt32Array::from(positions), None)?;
        let repeated = take(&x, &UInt32Array::from(rows_of.clone()), None)?;
        let results = op.compare(&repeated, &values)?;
        // Per row: (any true, any false, any NULL), from the flat results.
        let mut seen = vec![(false, false, false); rows];
        for (i, row) in rows_of.iter().enumerate() {
            let entry = &mut seen[*row as usize];
            match results.is_valid(i).then(|| results.value(i)) {
                Some(true) => entry.0 = true,
                Some(false) => entry.1 = true,
                None => entry.2 = true,
            }
        }
        let out: BooleanArray = (0..rows)
            .map(|row| {
                if lists.is_null(row) {
                    return None;
                }
                let (some_true, some_false, some_null) = seen[row];
                match self.all {
                    false if some_true => Some(true),
                    false if some_null => None,
                    false => Some(false),
                    true if some_false => Some(false),
                    true if some_null => None,
                    true => Some(true),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `a < b` and the other comparisons of two arrays, as PostgreSQL orders
/// them: element by element, a NULL element after every value, then the
/// shorter first (DataFusion puts NULL elements first).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayComparison {
    op: Comparison,
    signature: Signature,
}

impl ScalarUDFImpl for ArrayComparison {
    fn name(&self) -> &str {
        "pg_array_compare"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use datafusion::arrow::compute::SortOptions;
        use datafusion::arrow::row::{RowConverter, SortField};
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let right = datafusion::arrow::compute::cast(&arrays[1], arrays[0].data_type())?;
        let options = SortOptions {
            descending: false,
            nulls_first: false,
        };
        let converter = RowConverter::new(vec![SortField::new_with_options(
            arrays[0].data_type().clone(),
            options,
        )])?;
        let left_rows = converter.convert_columns(std::slice::from_ref(&arrays[0]))?;
        let right_rows = converter.convert_columns(std::slice::from_ref(&right))?;
        let out: BooleanArray = (0..arrays[0].len())
            .map(|i| {
                (arrays[0].is_valid(i) && right.is_valid(i))
                    .then(|| self.op.holds(left_rows.row(i).cmp(&right_rows.row(i))))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `array_length(a, dim)` as PostgreSQL: NULL for an empty array (and a
/// dimension it does not have), where DataFusion says 0.
fn array_length_udf() -> ScalarUDF {
    let inner = datafusion::functions_nested::length::array_length_udf();
    let signature = inner.signature().clone();
    ScalarUDF::from(Wrapped {
        name: "array_length",
        inner,
        signature,
        returns: None,
        finish: |values, _| {
            let lengths = datafusion::arrow::compute::cast(&values, &DataType::Int32)?;
            let lengths = lengths.as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            let out: datafusion::arrow::array::Int32Array =
                lengths.iter().map(|n| n.filter(|&n| n > 0)).collect();
            Ok(Arc::new(out))
        },
    })
}

/// `array_dims(a)` as PostgreSQL prints it: `[1:3]` (`[1:2][1:3]`), NULL
/// for an empty array; DataFusion gives the lengths as a list.
fn array_dims_udf() -> ScalarUDF {
    let inner = datafusion::functions_nested::dimension::array_dims_udf();
    let signature = inner.signature().clone();
    ScalarUDF::from(Wrapped {
        name: "array_dims",
        inner,
        signature,
        returns: Some(DataType::Utf8),
        finish: |values, _| {
            let lists = values.as_list::<i32>();
            let out: StringArray = (0..lists.len())
                .map(|i| {
                    if lists.is_null(i) {
                        return None;
                    }
                    let dims = datafusion::arrow::compute::cast(&lists.value(i), &DataType::UInt64)
                        .ok()?;
                    let dims = dims.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
                    if dims.is_empty() || dims.iter().any(|d| d.unwrap_or(0) == 0) {
                        return None;
                    }
                    Some(
                        dims.iter()
                            .map(|d| format!("[1:{}]", d.unwrap_or(0)))
                            .collect::<String>(),
                    )
                })
                .collect();
            Ok(Arc::new(out))
        },
    })
}

/// A DataFusion function whose result is adjusted to PostgreSQL's.
#[derive(Debug)]
struct Wrapped {
    name: &'static str,
    inner: Arc<ScalarUDF>,
    signature: Signature,
    /// The result type, when it differs from the inner function's.
    returns: Option<DataType>,
    finish: fn(ArrayRef, usize) -> DfResult<ArrayRef>,
}

impl PartialEq for Wrapped {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Wrapped {}

impl std::hash::Hash for Wrapped {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Wrapped {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(args)
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match &self.returns {
            Some(t) => Ok(t.clone()),
            None => Ok(match self.inner.return_type(args)? {
                DataType::UInt64 | DataType::Int64 => DataType::Int32,
                other => other,
            }),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let inner_field = self.inner.return_field_from_args(ReturnFieldArgs {
            arg_fields: &args.arg_fields,
            scalar_arguments: &vec![None; args.arg_fields.len()],
        })?;
        let inner_args = ScalarFunctionArgs {
            return_field: inner_field,
            ..args
        };
        let values = self.inner.invoke_with_args(inner_args)?.to_array(rows)?;
        Ok(ColumnarValue::Array((self.finish)(values, rows)?))
    }
}

/// The array functions that replace DataFusion's where PostgreSQL's
/// answer differs, and the ones `pg_any`/`pg_all` calls are planned as.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions_nested::{remove, replace};
    vec![
        ScalarUDF::from(Quantified::new(false)),
        ScalarUDF::from(Quantified::new(true)),
        array_length_udf(),
        array_dims_udf(),
        // PostgreSQL's remove and replace every match; DataFusion's
        // `array_remove`/`array_replace` only the first.
        remove::array_remove_all_udf()
            .as_ref()
            .clone()
            .with_aliases(["array_remove"]),
        replace::array_replace_all_udf()
            .as_ref()
            .clone()
            .with_aliases(["array_replace"]),
    ]
}

fn is_text_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Literal(ScalarValue::Utf8(Some(_)), _))
}

/// `pg_array_in(text, NULL::list_type)`: text read as an array.
pub fn array_literal(text: Expr, list_type: &DataType) -> DfResult<Expr> {
    Ok(Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(array_in_udf()),
        vec![text, Expr::Literal(ScalarValue::try_from(list_type)?, None)],
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Option<String>> {
        parse_array_text(text).unwrap()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn array_text_reads_as_postgres_does() {
        assert_eq!(parse("{}"), Vec::<Option<String>>::new());
        assert_eq!(parse(" { } "), Vec::<Option<String>>::new());
        assert_eq!(parse("{1,2,3}"), vec![s("1"), s("2"), s("3")]);
        assert_eq!(parse("{ a b , c }"), vec![s("a b"), s("c")]);
        assert_eq!(parse("{NULL,null,\"NULL\"}"), vec![None, None, s("NULL")]);
        assert_eq!(
            parse(r#"{"a,b","c\"d","e\\f",""}"#),
            vec![s("a,b"), s("c\"d"), s("e\\f"), s("")]
        );
        assert_eq!(parse(r"{a\,b,c\ }"), vec![s("a,b"), s("c ")]);
        assert_eq!(parse("[1:2]={x,y}"), vec![s("x"), s("y")]);
    }

    #[test]
    fn malformed_array_text_is_refused() {
        for bad in [
            "",
            "1,2",
            "{1,2",
            "{1,,2}",
            "{1,2}x",
            "{\"a\"b}",
            "{a\"b\"}",
            "[2:3]={1,2}",
            "[1:3]={1,2}",
        ] {
            assert!(
                matches!(parse_array_text(bad), Err(ArrayTextError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_array_text("{{1,2},{3,4}}"),
            Err(ArrayTextError::Multidimensional)
        );
    }

    #[test]
    fn elements_are_quoted_when_they_need_it() {
        let text = array_text([
            Some("a"),
            Some("b c"),
            Some(""),
            None,
            Some("null"),
            Some("x\"y\\z"),
            Some("{"),
        ]);
        assert_eq!(text, r#"{a,"b c","",NULL,"null","x\"y\\z","{"}"#);
        let read: Vec<Option<String>> = parse(&text);
        assert_eq!(
            read,
            vec![
                s("a"),
                s("b c"),
                s(""),
                None,
                s("null"),
                s("x\"y\\z"),
                s("{")
            ]
        );
    }
}
