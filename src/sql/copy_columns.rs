//! COPY input read straight into typed columns. A value written in its
//! type's plain form (`-42`, `1234.50`, `1996-03-13`) is parsed as it is
//! read, with no string column in between; anything else (spaces,
//! exponents, `infinity`, DateStyle forms, values out of range, malformed
//! text) is kept as text and converted at the end by `column_from_text`,
//! the one place that knows PostgreSQL's input rules and words the errors.
//! A plain form means the same under both, so the two agree on every
//! value; the tests below hold them to it.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBufferBuilder, PrimitiveArray, StringBuilder,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Int16Type, Int32Type,
    Int64Type,
};

use super::pg_datestyle::Order;
use super::{column_from_text, BadValue};

/// One column of COPY input as it is read.
pub(crate) enum ColumnBuilder {
    /// Every type without a plain form read here: the text, converted at
    /// the end.
    Text(StringBuilder),
    Int16(Plain<Int16Type>),
    Int32(Plain<Int32Type>),
    Int64(Plain<Int64Type>),
    Decimal {
        values: Plain<Decimal128Type>,
        precision: u8,
        scale: i8,
    },
    Date(Plain<Date32Type>),
}

impl ColumnBuilder {
    /// A builder for `rows` values of `field`; `text_bytes` is a guess at
    /// the size of a text column's values.
    pub(crate) fn new(field: &Field, rows: usize, text_bytes: usize) -> ColumnBuilder {
        match field.data_type() {
            DataType::Int16 => ColumnBuilder::Int16(Plain::new(rows)),
            DataType::Int32 => ColumnBuilder::Int32(Plain::new(rows)),
            DataType::Int64 => ColumnBuilder::Int64(Plain::new(rows)),
            DataType::Decimal128(precision, scale) if *scale >= 0 => ColumnBuilder::Decimal {
                values: Plain::new(rows),
                precision: *precision,
                scale: *scale,
            },
            DataType::Date32 => ColumnBuilder::Date(Plain::new(rows)),
            _ => ColumnBuilder::Text(StringBuilder::with_capacity(rows, text_bytes)),
        }
    }

    /// Adds the next value (None is NULL).
    pub(crate) fn append(&mut self, value: Option<&str>) {
        match self {
            ColumnBuilder::Text(b) => b.append_option(value),
            ColumnBuilder::Int16(p) => p.append(value, |s| parse_int(s, 4).map(|v| v as i16)),
            ColumnBuilder::Int32(p) => p.append(value, |s| parse_int(s, 9).map(|v| v as i32)),
            ColumnBuilder::Int64(p) => p.append(value, |s| parse_int(s, 18)),
            ColumnBuilder::Decimal {
                values,
                precision,
                scale,
            } => {
                let (precision, scale) = (*precision, *scale);
                values.append(value, |s| parse_decimal(s, precision, scale))
            }
            ColumnBuilder::Date(p) => p.append(value, parse_date),
        }
    }

    /// The column, of `field`'s type. A value that does not convert is a
    /// `BadValue` naming its row among those appended.
    pub(crate) fn finish(
        &mut self,
        field: &Field,
        zone: &str,
        order: Order,
    ) -> Result<ArrayRef, BadValue> {
        let taken = std::mem::replace(self, ColumnBuilder::Text(StringBuilder::new()));
        match taken {
            ColumnBuilder::Text(mut b) => column_from_text(field, &b.finish(), zone, order),
            ColumnBuilder::Int16(p) => p.finish(field, zone, order),
            ColumnBuilder::Int32(p) => p.finish(field, zone, order),
            ColumnBuilder::Int64(p) => p.finish(field, zone, order),
            ColumnBuilder::Decimal { values, .. } => values.finish(field, zone, order),
            ColumnBuilder::Date(p) => p.finish(field, zone, order),
        }
    }

    /// The values as text, for tests of the field splitters.
    #[cfg(test)]
    pub(crate) fn texts(&mut self) -> datafusion::arrow::array::StringArray {
        match self {
            ColumnBuilder::Text(b) => b.finish(),
            _ => panic!("not a text column"),
        }
    }
}

/// Values of a primitive type parsed as they come, with those not in the
/// plain form set aside as text.
pub(crate) struct Plain<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    valid: BooleanBufferBuilder,
    /// Rows whose text is not in the plain form, and their texts.
    other_rows: Vec<usize>,
    other: StringBuilder,
}

impl<T: ArrowPrimitiveType> Plain<T> {
    fn new(rows: usize) -> Plain<T> {
        Plain {
            values: Vec::with_capacity(rows),
            valid: BooleanBufferBuilder::new(rows),
            other_rows: Vec::new(),
            other: StringBuilder::new(),
        }
    }

    fn append(&mut self, value: Option<&str>, parse: impl Fn(&[u8]) -> Option<T::Native>) {
        match value {
            None => {
                self.values.push(T::Native::default());
                self.valid.append(false);
            }
            Some(text) => {
                let parsed = parse(text.as_bytes());
                if parsed.is_none() {
                    self.other_rows.push(self.values.len());
                    self.other.append_value(text);
                }
                self.values.push(parsed.unwrap_or_default());
                self.valid.append(true);
            }
        }
    }

    fn finish(mut self, field: &Field, zone: &str, order: Order) -> Result<ArrayRef, BadValue> {
        if !self.other_rows.is_empty() {
            let rows = &self.other_rows;
            let converted =
                column_from_text(field, &self.other.finish(), zone, order).map_err(|mut bad| {
                    bad.row = rows.get(bad.row).copied().unwrap_or(bad.row);
                    bad
                })?;
            let converted = converted.as_primitive::<T>();
            for (i, &row) in rows.iter().enumerate() {
                if converted.is_valid(i) {
                    self.values[row] = converted.value(i);
                } else {
                    self.valid.set_bit(row, false);
                }
            }
        }
        let nulls = NullBuffer::new(self.valid.finish());
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        let array = PrimitiveArray::<T>::new(self.values.into(), nulls)
            .with_data_type(field.data_type().clone());
        Ok(Arc::new(array))
    }
}

/// Digits, with an optional leading minus: at most `max_digits` of them,
/// so the value cannot overflow the type they are counted for.
fn parse_int(s: &[u8], max_digits: usize) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    let mut value = 0i64;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i64::from(d);
    }
    Some(if negative { -value } else { value })
}

/// `[-]digits[.digits]` with no more integer digits than the precision
/// leaves and no more fraction digits than the scale (nothing to round,
/// nothing to overflow), as the unscaled value.
fn parse_decimal(s: &[u8], precision: u8, scale: i8) -> Option<i128> {
    let scale = usize::try_from(scale).ok()?;
    let (negative, rest) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let (whole, fraction) = match memchr::memchr(b'.', rest) {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &[][..]),
    };
    if whole.is_empty()
        || (fraction.is_empty() && whole.len() != rest.len())
        || whole.len() > usize::from(precision).saturating_sub(scale)
        || fraction.len() > scale
    {
        return None;
    }
    let mut value = 0i128;
    for &b in whole.iter().chain(fraction) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + i128::from(d);
    }
    value *= 10i128.checked_pow(u32::try_from(scale - fraction.len()).ok()?)?;
    Some(if negative { -value } else { value })
}

/// `YYYY-MM-DD` (year 1 to 9999, read so under every DateStyle) as days
/// since 1970-01-01.
fn parse_date(s: &[u8]) -> Option<i32> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |value, &b| {
            let d = b.wrapping_sub(b'0');
            (d <= 9).then_some(value * 10 + u32::from(d))
        })
    };
    let (year, month, day) = (number(&s[..4])?, number(&s[5..7])?, number(&s[8..])?);
    if year == 0 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    Some(days_from_civil(year as i32, month as i32, day as i32))
}

/// Days since 1970-01-01 of a valid proleptic Gregorian date (Howard
/// Hinnant's `days_from_civil`: years counted from March, so February's
/// leap day ends a year).
fn days_from_civil(year: i32, month: i32, day: i32) -> i32 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    #[test]
    fn iso_dates_count_days_as_chrono_does() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let years = (1..=40).chain(1580..=2500).chain(9960..=9999);
        for year in years {
            for month in 1..=13u32 {
                for day in 0..=32u32 {
                    let text = format!("{year:04}-{month:02}-{day:02}");
                    let expected = chrono::NaiveDate::from_ymd_opt(year, month, day)
                        .map(|date| (date - epoch).num_days() as i32);
                    assert_eq!(parse_date(text.as_bytes()), expected, "{text}");
                }
            }
        }
    }

    /// The column read through the builder, and through the general path
    /// alone: both must give the same values, or the same error.
    fn both_ways(data_type: &DataType, values: &[Option<&str>]) {
        let field = Field::new("c", data_type.clone(), true);
        for order in [Order::Mdy, Order::Dmy, Order::Ymd] {
            let mut builder = ColumnBuilder::new(&field, values.len(), 16);
            for v in values {
                builder.append(*v);
            }
            let fast = builder.finish(&field, "UTC", order);
            let general = column_from_text(
                &field,
                &values.iter().copied().collect::<StringArray>(),
                "UTC",
                order,
            );
            match (fast, general) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.data_type(), b.data_type());
                    assert_eq!(&a.to_data(), &b.to_data(), "{data_type} {values:?}");
                }
                (Err(a), Err(b)) => assert_eq!(
                    (a.row, a.value, a.message, a.out_of_range),
                    (b.row, b.value, b.message, b.out_of_range),
                    "{data_type} {values:?}"
                ),
                (a, b) => panic!(
                    "{data_type} {values:?}: {:?} against {:?}",
                    a.map_err(|e| e.message),
                    b.map_err(|e| e.message)
                ),
            }
        }
    }

    fn types() -> Vec<DataType> {
        vec![
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::Decimal128(15, 2),
            DataType::Decimal128(5, 0),
            DataType::Decimal128(38, 10),
            DataType::Decimal128(4, 4),
            DataType::Date32,
        ]
    }

    #[test]
    fn plain_and_other_forms_read_as_the_general_rules_read_them() {
        let cases = [
            "0",
            "-0",
            "7",
            "-42",
            "007",
            "+5",
            " 5",
            "5 ",
            "",
            "-",
            "1.",
            ".5",
            "1.5",
            "-1.25",
            "12.345",
            "1e3",
            "32767",
            "32768",
            "-32768",
            "2147483647",
            "2147483648",
            "9223372036854775807",
            "9223372036854775808",
            "999999999999999999",
            "9999999999999.99",
            "99999999999999.99",
            "0.0001",
            "0.12345",
            "1996-03-13",
            "2024-02-29",
            "2023-02-29",
            "0000-01-01",
            "0001-01-01",
            "9999-12-31",
            "1996-3-13",
            "13/03/1996",
            "03/13/1996",
            "infinity",
            "abc",
            "1,5",
            "١٢",
        ];
        for data_type in types() {
            for case in cases {
                both_ways(&data_type, &[Some(case)]);
            }
            // Mixed with NULLs and plain values, the deferred rows land in
            // their places (or the first bad one is named by its row).
            both_ways(
                &data_type,
                &[
                    Some("1"),
                    None,
                    Some(" 2"),
                    Some("1996-01-02"),
                    None,
                    Some("3.5"),
                ],
            );
            both_ways(&data_type, &[Some("10"), None, Some("20")]);
        }
    }

    #[test]
    fn random_texts_read_as_the_general_rules_read_them() {
        // A small deterministic generator over the characters that matter.
        let alphabet = b"0123456789-.+ e/";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for data_type in types() {
            for _ in 0..3000 {
                let len = (next() % 12) as usize;
                let text: String = (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect();
                both_ways(&data_type, &[Some(&text)]);
            }
            for _ in 0..500 {
                let text = format!(
                    "{:04}-{:02}-{:02}",
                    next() % 10000,
                    next() % 14,
                    next() % 33
                );
                both_ways(&data_type, &[Some(&text)]);
            }
        }
    }
}
