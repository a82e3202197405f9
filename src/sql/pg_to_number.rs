//! PostgreSQL's numeric templates: `to_char(number, template)` and
//! `to_number(text, template)` with `9`, `0`, `.`/`D`, `,`/`G`, `FM`, `S`,
//! `MI`, `PL`, `SG`. Other patterns (`EEEE`, `RN`, `V`, `TH`, `PR`, `L`,
//! `$`) are refused rather than printed wrong.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Builder, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Nine,
    Zero,
    Point,
    Group,
    /// `S`: the sign, anchored to the number.
    Sign,
    /// `MI`, `PL`, `SG`: a minus, a plus, either, where they stand.
    Minus,
    Plus,
    SignHere,
    Literal(char),
}

struct Template {
    items: Vec<Item>,
    fill_mode: bool,
}

impl Template {
    fn parse(text: &str) -> Result<Template> {
        let mut items = Vec::new();
        let mut fill_mode = false;
        let upper = text.to_ascii_uppercase();
        let chars: Vec<char> = upper.chars().collect();
        let original: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let rest: String = chars[i..].iter().take(4).collect();
            let (item, len) = if rest.starts_with("FM") {
                fill_mode = true;
                i += 2;
                continue;
            } else if rest.starts_with("MI") {
                (Item::Minus, 2)
            } else if rest.starts_with("PL") {
                (Item::Plus, 2)
            } else if rest.starts_with("SG") {
                (Item::SignHere, 2)
            } else if rest.starts_with("EEEE")
                || rest.starts_with("RN")
                || rest.starts_with("TH")
                || rest.starts_with("PR")
            {
                return Err(unsupported(&rest[..2.min(rest.len())]));
            } else {
                match chars[i] {
                    '9' => (Item::Nine, 1),
                    '0' => (Item::Zero, 1),
                    '.' | 'D' => (Item::Point, 1),
                    ',' | 'G' => (Item::Group, 1),
                    'S' => (Item::Sign, 1),
                    'V' | 'L' | '$' => return Err(unsupported(&chars[i].to_string())),
                    _ => (Item::Literal(original[i]), 1),
                }
            };
            items.push(item);
            i += len;
        }
        if items.iter().filter(|i| **i == Item::Point).count() > 1 {
            return Err(DataFusionError::Execution("multiple decimal points".into()));
        }
        Ok(Template { items, fill_mode })
    }

    fn digits_before_point(&self) -> usize {
        self.items
            .iter()
            .take_while(|i| **i != Item::Point)
            .filter(|i| matches!(i, Item::Nine | Item::Zero))
            .count()
    }

    fn digits_after_point(&self) -> usize {
        self.items
            .iter()
            .skip_while(|i| **i != Item::Point)
            .filter(|i| matches!(i, Item::Nine | Item::Zero))
            .count()
    }

    fn has_point(&self) -> bool {
        self.items.contains(&Item::Point)
    }

    /// `to_char`: `value` as decimal digits, `negative`, and its scale.
    fn format(&self, negative: bool, integer: &str, fraction: &str) -> String {
        let int_positions = self.digits_before_point();
        let overflow = integer.len() > int_positions;
        let integer = if integer == "0" { "" } else { integer };
        let leading = int_positions.saturating_sub(integer.len());
        // MI and SG stand for the sign; PL only adds a plus.
        let explicit_sign = self
            .items
            .iter()
            .any(|i| matches!(i, Item::Minus | Item::SignHere));
        let anchored = self.items.iter().position(|i| *i == Item::Sign);
        let mut out = String::new();
        let mut int_seen = 0;
        let mut frac_seen = 0;
        let mut started = false;
        let mut zero_fill = false;
        // Where the sign goes when anchored (or by default): before the
        // first character of the number.
        let mut number_start: Option<usize> = None;
        let mut after_point = false;
        for (index, item) in self.items.iter().enumerate() {
            match item {
                Item::Nine | Item::Zero if !after_point => {
                    let position = int_seen;
                    int_seen += 1;
                    if overflow {
                        number_start.get_or_insert(out.len());
                        out.push('#');
                        continue;
                    }
                    if *item == Item::Zero {
                        zero_fill = true;
                    }
                    if position < leading {
                        let last = position + 1 == int_positions;
                        if zero_fill || (last && integer.is_empty() && !self.has_point()) {
                            number_start.get_or_insert(out.len());
                            started = true;
                            out.push('0');
                        } else {
                            out.push(' ');
                        }
                    } else {
                        number_start.get_or_insert(out.len());
                        started = true;
                        out.push(integer.as_bytes()[position - leading] as char);
                    }
                }
                Item::Nine | Item::Zero => {
                    let digit = if overflow {
                        '#'
                    } else {
                        fraction
                            .as_bytes()
                            .get(frac_seen)
                            .map_or('0', |b| *b as char)
                    };
                    frac_seen += 1;
                    out.push(digit);
                }
                Item::Point => {
                    after_point = true;
                    number_start.get_or_insert(out.len());
                    started = true;
                    out.push('.');
                }
                Item::Group => out.push(if started { ',' } else { ' ' }),
                Item::Sign => {
                    // Anchored at the end: right here; at the start: later.
                    if index + 1 == self.items.len() || after_point || int_seen > 0 {
                        out.push(if negative { '-' } else { '+' });
                    }
                }
                Item::Minus => out.push(if negative { '-' } else { ' ' }),
                Item::Plus => out.push(if negative { ' ' } else { '+' }),
                Item::SignHere => out.push(if negative { '-' } else { '+' }),
                Item::Literal(c) => out.push(*c),
            }
        }
        let leading_sign = match anchored {
            Some(0) => Some(if negative { '-' } else { '+' }),
            Some(_) => None,
            None if explicit_sign => None,
            None => Some(if negative { '-' } else { ' ' }),
        };
        if let Some(sign) = leading_sign {
            let at = number_start.unwrap_or(out.len());
            out.insert(at, sign);
        }
        if self.fill_mode {
            out = self.trim(&out);
        }
        out
    }

    /// Fill mode: no padding blanks, no trailing zeros of `9` positions.
    fn trim(&self, text: &str) -> String {
        let mut out = text.trim_start().to_string();
        if self.has_point() {
            let point = self
                .items
                .iter()
                .position(|i| *i == Item::Point)
                .unwrap_or(self.items.len());
            let nines_after = self.items[point..]
                .iter()
                .rev()
                .take_while(|i| **i == Item::Nine)
                .count();
            for _ in 0..nines_after {
                if out.ends_with('0') {
                    out.pop();
                } else {
                    break;
                }
            }
        }
        out.trim_end_matches(' ').to_string()
    }
}

fn unsupported(pattern: &str) -> DataFusionError {
    DataFusionError::NotImplemented(format!("the number template pattern \"{pattern}\""))
}

/// A decimal's digits rounded half away from zero to `scale` places:
/// (negative, integer digits, fraction digits).
fn rounded(value: i128, value_scale: i8, scale: usize) -> (bool, String, String) {
    let negative = value < 0;
    let mut magnitude = value.unsigned_abs();
    let value_scale = value_scale.max(0) as usize;
    let mut digits_scale = value_scale;
    if value_scale > scale {
        let drop = 10u128.pow((value_scale - scale) as u32);
        let rest = magnitude % drop;
        magnitude /= drop;
        if rest * 2 >= drop {
            magnitude += 1;
        }
        digits_scale = scale;
    }
    let text = magnitude.to_string();
    let (integer, fraction) = if digits_scale == 0 {
        (text, String::new())
    } else if text.len() > digits_scale {
        let split = text.len() - digits_scale;
        (text[..split].to_string(), text[split..].to_string())
    } else {
        ("0".to_string(), format!("{text:0>digits_scale$}"))
    };
    let integer = integer.trim_start_matches('0');
    let integer = if integer.is_empty() { "0" } else { integer };
    let negative = negative && (integer != "0" || fraction.chars().any(|c| c != '0'));
    (negative, integer.to_string(), fraction)
}

/// `to_char(number, template)`: the numbers as decimals of scale 10 at
/// most, each formatted.
pub fn to_char_numbers(values: &ArrayRef, templates: &StringArray) -> Result<ArrayRef> {
    let (decimals, scale) = match values.data_type() {
        DataType::Decimal128(_, s) => (values.clone(), *s),
        DataType::Float32 | DataType::Float64 => (cast(values, &DataType::Decimal128(38, 10))?, 10),
        _ => (cast(values, &DataType::Decimal128(38, 0))?, 0),
    };
    let decimals = decimals.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
    let mut parsed: Option<(String, Template)> = None;
    let mut out = Vec::with_capacity(decimals.len());
    for row in 0..decimals.len() {
        if decimals.is_null(row) || templates.is_null(row) {
            out.push(None);
            continue;
        }
        let text = templates.value(row);
        if parsed.as_ref().is_none_or(|(t, _)| t != text) {
            parsed = Some((text.to_string(), Template::parse(text)?));
        }
        let template = &parsed.as_ref().expect("parsed above").1;
        let (negative, integer, fraction) =
            rounded(decimals.value(row), scale, template.digits_after_point());
        out.push(Some(template.format(negative, &integer, &fraction)));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `to_number(text, template)`: a numeric with the template's decimal
/// places.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ToNumber {
    signature: Signature,
}

pub fn to_number_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(ToNumber {
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
    })
}

/// The scale `to_number` gives: the template's places after the point.
fn scale_of(args: &ReturnFieldArgs) -> usize {
    match args.scalar_arguments.get(1) {
        Some(Some(ScalarValue::Utf8(Some(t)))) => Template::parse(t)
            .map(|t| t.digits_after_point())
            .unwrap_or(0),
        _ => 10,
    }
    .min(38)
}

impl ScalarUDFImpl for ToNumber {
    fn name(&self) -> &str {
        "to_number"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 10))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let scale = scale_of(&args);
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Decimal128(38, scale as i8),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scale = match args.return_field.data_type() {
            DataType::Decimal128(_, s) => *s as usize,
            _ => 10,
        };
        let texts = args.args[0].to_array(args.number_rows)?;
        let templates = args.args[1].to_array(args.number_rows)?;
        let (texts, templates) = (texts.as_string::<i32>(), templates.as_string::<i32>());
        let mut builder = Decimal128Builder::with_capacity(texts.len());
        for row in 0..texts.len() {
            if texts.is_null(row) || templates.is_null(row) {
                builder.append_null();
                continue;
            }
            let template = Template::parse(templates.value(row))?;
            builder.append_value(read_number(texts.value(row), &template, scale)?);
        }
        let array = builder.finish().with_precision_and_scale(38, scale as i8)?;
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}

/// The value of `text` read by `template`, as a decimal of `scale`:
/// digits up to the template's places, the point where it has one, a
/// minus (or angle brackets) anywhere; separators, currency and other
/// characters are skipped.
fn read_number(text: &str, template: &Template, scale: usize) -> Result<i128> {
    let max_int = template.digits_before_point();
    let max_frac = template.digits_after_point();
    let mut integer = String::new();
    let mut fraction = String::new();
    let mut in_fraction = false;
    let mut negative = false;
    for c in text.chars() {
        match c {
            '0'..='9' if in_fraction && fraction.len() < max_frac => fraction.push(c),
            '0'..='9' if !in_fraction && integer.len() < max_int => integer.push(c),
            '.' if template.has_point() => in_fraction = true,
            '-' | '<' => negative = true,
            _ => {}
        }
    }
    if integer.is_empty() && fraction.is_empty() {
        return Err(DataFusionError::Execution(format!(
            "invalid input syntax for type numeric: \"{text}\""
        )));
    }
    let mut digits = integer;
    fraction.truncate(scale);
    while fraction.len() < scale {
        fraction.push('0');
    }
    digits.push_str(&fraction);
    let value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| {
            DataFusionError::Execution(format!("value \"{text}\" is out of range for numeric"))
        })?
    };
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(value: &str, template: &str) -> String {
        let (negative, body) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let scale = frac.len() as i8;
        let mut raw: i128 = format!("{int}{frac}").parse().unwrap();
        if negative {
            raw = -raw;
        }
        let template = Template::parse(template).unwrap();
        let (negative, integer, fraction) = rounded(raw, scale, template.digits_after_point());
        template.format(negative, &integer, &fraction)
    }

    /// Each answer is what PostgreSQL 15 gives.
    #[test]
    fn numbers_format_as_in_postgresql() {
        for (value, template, expected) in [
            ("123.45", "999D99", " 123.45"),
            ("-123.45", "999D99", "-123.45"),
            ("5", "999", "   5"),
            ("5", "009", " 005"),
            ("1234.5", "9G999D99", " 1,234.50"),
            ("5", "FM999", "5"),
            ("0.5", "9D99", "  .50"),
            ("0.5", "0D99", " 0.50"),
            ("1234", "99", " ##"),
            ("1.5", "FM999D99", "1.5"),
            ("1.5", "FM999D00", "1.50"),
            ("5", "9,999", "     5"),
            ("-5", "999MI", "  5-"),
            ("5", "999MI", "  5 "),
            ("-5", "S999", "  -5"),
            ("5", "S999", "  +5"),
            ("-5", "SG999", "-  5"),
            ("5", "PL999", "+   5"),
            ("1234567.891", "FM9,999,999.00", "1,234,567.89"),
            ("2.5", "9", " 3"),
            ("-2.5", "9", "-3"),
            ("0", "999", "   0"),
            ("0", "FM999", "0"),
            ("-0.4", "9D9", " -.4"),
            ("12", "9999.999", "   12.000"),
            ("485", "FM9999", "485"),
            ("123", "FM0000", "0123"),
        ] {
            assert_eq!(
                show(value, template),
                expected,
                "to_char({value}, '{template}')"
            );
        }
    }

    #[test]
    fn numbers_read_as_in_postgresql() {
        let read = |text: &str, template: &str| {
            let template = Template::parse(template).unwrap();
            let scale = template.digits_after_point();
            (read_number(text, &template, scale).unwrap(), scale)
        };
        assert_eq!(read("12,454.8-", "99G999D9S"), (-124548, 1));
        assert_eq!(read("-12.5", "999D9"), (-125, 1));
        assert_eq!(read("42", "99"), (42, 0));
        assert_eq!(read(" 1 234", "9 999"), (1234, 0));
        assert_eq!(read("1.2345", "9D99"), (123, 2));
    }
}

/// `mod(a, b)`: the remainder with the sign of `a`, as `a % b`, for
/// integers and numerics (PostgreSQL has no `mod` of floats); a zero `b`
/// is a division by zero.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

pub fn mod_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Mod {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [a, b] = args else {
            return Err(DataFusionError::Plan(
                "mod(a, b) takes two arguments".into(),
            ));
        };
        let integer = |t: &DataType| {
            matches!(
                t,
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::Null
            )
        };
        let common = match (a, b) {
            (a, b) if integer(a) && integer(b) => {
                let width = |t: &DataType| match t {
                    DataType::Int64 => 3,
                    DataType::Int32 | DataType::Null => 2,
                    _ => 1,
                };
                match width(a).max(width(b)) {
                    3 => DataType::Int64,
                    2 => DataType::Int32,
                    _ => DataType::Int16,
                }
            }
            (a, b) if (a.is_decimal() || integer(a)) && (b.is_decimal() || integer(b)) => {
                let scale = |t: &DataType| match t {
                    DataType::Decimal128(_, s) => *s,
                    _ => 0,
                };
                DataType::Decimal128(38, scale(a).max(scale(b)))
            }
            (a, b) => {
                return Err(DataFusionError::Plan(format!(
                    "function mod({a}, {b}) does not exist: mod takes integers or numerics"
                )))
            }
        };
        Ok(vec![common.clone(), common])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let a = args.args[0].to_array(args.number_rows)?;
        let b = args.args[1].to_array(args.number_rows)?;
        let out = datafusion::arrow::compute::kernels::numeric::rem(&a, &b)?;
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}
