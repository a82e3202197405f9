//! DataRows written straight from Arrow arrays for the column types that
//! carry most result rows (integers, text, dates, numerics, booleans), in
//! text and binary format: no per-value type dispatch, no formatting
//! machinery, one buffer per batch split into rows. A batch with any other
//! column goes through the general encoder in `types.rs`, which produces
//! the same bytes (the tests here compare the two).

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Int16Array, Int32Array,
    Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Int16Type, Int32Type, Int64Type,
};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::messages::data::DataRow;

use crate::engine::types::TaggedType;

/// Days from 1970-01-01 (Arrow) to 2000-01-01 (Postgres' binary epoch).
const PG_EPOCH_DAYS: i32 = 10_957;

/// One column the fast path can write.
enum Column<'a> {
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Text(&'a StringArray),
    Date(&'a Date32Array),
    Numeric(&'a Decimal128Array, u16),
    Bool(&'a BooleanArray),
}

impl<'a> Column<'a> {
    /// The fast writer for `array` as `field` describes it, if there is one.
    fn of(array: &'a ArrayRef, field: &FieldInfo, tag: Option<TaggedType>) -> Option<Column<'a>> {
        let text = field.format() == FieldFormat::Text;
        let column = match (array.data_type(), field.datatype()) {
            (DataType::Int16, &Type::INT2) => Column::Int16(array.as_primitive::<Int16Type>()),
            (DataType::Int32, &Type::INT4) => Column::Int32(array.as_primitive::<Int32Type>()),
            (DataType::Int64, &Type::INT8) => Column::Int64(array.as_primitive::<Int64Type>()),
            (DataType::Utf8, &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR)
                if matches!(tag, None | Some(TaggedType::Varchar | TaggedType::Bpchar)) =>
            {
                Column::Text(array.as_string::<i32>())
            }
            // Text dates only in the default ISO DateStyle.
            (DataType::Date32, &Type::DATE)
                if !text || field.format_options().date_style.starts_with("ISO") =>
            {
                Column::Date(array.as_primitive::<Date32Type>())
            }
            (DataType::Decimal128(_, scale @ 0..), &Type::NUMERIC) => {
                Column::Numeric(array.as_primitive::<Decimal128Type>(), *scale as u16)
            }
            (DataType::Boolean, &Type::BOOL) => Column::Bool(array.as_boolean()),
            _ => return None,
        };
        if tag.is_some() && !matches!(column, Column::Text(_)) {
            return None;
        }
        Some(column)
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Column::Int16(a) => a.is_null(row),
            Column::Int32(a) => a.is_null(row),
            Column::Int64(a) => a.is_null(row),
            Column::Text(a) => a.is_null(row),
            Column::Date(a) => a.is_null(row),
            Column::Numeric(a, _) => a.is_null(row),
            Column::Bool(a) => a.is_null(row),
        }
    }

    /// Writes the value at `row` (not NULL) without its length prefix.
    fn write(&self, row: usize, text: bool, out: &mut BytesMut) -> bool {
        let mut digits = itoa::Buffer::new();
        match (self, text) {
            (Column::Int16(a), true) => out.put_slice(digits.format(a.value(row)).as_bytes()),
            (Column::Int32(a), true) => out.put_slice(digits.format(a.value(row)).as_bytes()),
            (Column::Int64(a), true) => out.put_slice(digits.format(a.value(row)).as_bytes()),
            (Column::Int16(a), false) => out.put_i16(a.value(row)),
            (Column::Int32(a), false) => out.put_i32(a.value(row)),
            (Column::Int64(a), false) => out.put_i64(a.value(row)),
            (Column::Text(a), _) => out.put_slice(a.value(row).as_bytes()),
            (Column::Date(a), true) => return iso_date(a.value(row), out),
            (Column::Date(a), false) => out.put_i32(a.value(row) - PG_EPOCH_DAYS),
            (Column::Numeric(a, scale), true) => numeric_text(a.value(row), *scale, out),
            (Column::Numeric(a, scale), false) => numeric_binary(a.value(row), *scale, out),
            (Column::Bool(a), true) => out.put_u8(if a.value(row) { b't' } else { b'f' }),
            (Column::Bool(a), false) => out.put_u8(a.value(row) as u8),
        }
        true
    }
}

/// The batch's rows as DataRows, when every column has a fast writer
/// (None otherwise, or when a value needs the general encoder).
pub fn encode_batch(
    batch: &RecordBatch,
    fields: &[FieldInfo],
    tags: &[Option<TaggedType>],
) -> Option<Vec<DataRow>> {
    let columns = batch
        .columns()
        .iter()
        .zip(fields)
        .zip(tags)
        .map(|((array, field), tag)| {
            Column::of(array, field, *tag).map(|c| (c, field.format() == FieldFormat::Text))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut buf = BytesMut::with_capacity(batch.num_rows().min(1 << 16) * columns.len() * 12);
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        for (column, text) in &columns {
            if column.is_null(row) {
                buf.put_i32(-1);
                continue;
            }
            let at = buf.len();
            buf.put_i32(0);
            if !column.write(row, *text, &mut buf) {
                return None;
            }
            let len = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        rows.push(DataRow::new(buf.split(), columns.len() as i16));
    }
    Some(rows)
}

/// `YYYY-MM-DD` for years 1 to 9999 (others go to the general encoder,
/// which writes BC and five-digit years as Postgres does).
fn iso_date(days: i32, out: &mut BytesMut) -> bool {
    let Some(date) = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163) else {
        return false;
    };
    use chrono::Datelike;
    let (y, m, d) = (date.year(), date.month(), date.day());
    if !(1..=9999).contains(&y) {
        return false;
    }
    let y = y as u32;
    out.put_slice(&[
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b'-',
        b'0' + (m / 10) as u8,
        b'0' + (m % 10) as u8,
        b'-',
        b'0' + (d / 10) as u8,
        b'0' + (d % 10) as u8,
    ]);
    true
}

/// Postgres' text form of a numeric with `scale` digits after the point
/// (`-0.50`, `12.00`).
pub(crate) fn numeric_text(value: i128, scale: u16, out: &mut BytesMut) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(value.unsigned_abs()).as_bytes();
    let scale = scale as usize;
    if value < 0 {
        out.put_u8(b'-');
    }
    if digits.len() > scale {
        let point = digits.len() - scale;
        out.put_slice(&digits[..point]);
        if scale > 0 {
            out.put_u8(b'.');
            out.put_slice(&digits[point..]);
        }
    } else {
        out.put_slice(b"0.");
        out.put_bytes(b'0', scale - digits.len());
        out.put_slice(digits);
    }
}

/// Postgres' binary numeric: digit count, weight (of the first base-10000
/// digit), sign, display scale, then the base-10000 digits without
/// leading or trailing zero digits.
pub(crate) fn numeric_binary(value: i128, scale: u16, out: &mut BytesMut) {
    // Scaled up so that the point falls between base-10000 digits.
    let pad = (4 - scale % 4) % 4;
    let Some(mut rest) = value.unsigned_abs().checked_mul(10u128.pow(pad as u32)) else {
        return numeric_binary_wide(value, scale, out);
    };
    let fraction_groups = ((scale + pad) / 4) as i16;
    // Base-10000 digits, least significant first.
    let mut groups = [0i16; 12];
    let mut n = 0;
    while rest > 0 {
        groups[n] = (rest % 10_000) as i16;
        rest /= 10_000;
        n += 1;
    }
    let trailing = groups[..n].iter().take_while(|&&g| g == 0).count();
    let weight = if n == 0 {
        0
    } else {
        n as i16 - fraction_groups - 1
    };
    out.put_i16((n - trailing) as i16);
    out.put_i16(weight);
    out.put_u16(if value < 0 { 0x4000 } else { 0 });
    out.put_u16(scale);
    for g in groups[trailing..n].iter().rev() {
        out.put_i16(*g);
    }
}

/// [`numeric_binary`] for magnitudes too large to scale up in 128 bits,
/// through the decimal digits.
fn numeric_binary_wide(value: i128, scale: u16, out: &mut BytesMut) {
    let mut buffer = itoa::Buffer::new();
    let magnitude = buffer.format(value.unsigned_abs()).as_bytes();
    let mut digits = vec![b'0'; (scale as usize + 1).saturating_sub(magnitude.len())];
    digits.extend_from_slice(magnitude);
    let point = digits.len() - scale as usize;
    // Pad the integer part on the left and the fraction on the right to
    // whole groups of four.
    let lead = (4 - point % 4) % 4;
    let mut padded = vec![b'0'; lead];
    padded.extend_from_slice(&digits);
    padded.resize(
        padded.len() + (4 - (padded.len() - (lead + point)) % 4) % 4,
        b'0',
    );
    let groups: Vec<i16> = padded
        .chunks(4)
        .map(|g| g.iter().fold(0i16, |n, d| n * 10 + (d - b'0') as i16))
        .collect();
    let mut weight = ((lead + point) / 4) as i16 - 1;
    let first = groups.iter().position(|&g| g != 0);
    let (ndigits, weight, body) = match first {
        None => (0, 0, &groups[..0]),
        Some(first) => {
            let last = groups
                .iter()
                .rposition(|&g| g != 0)
                .expect("a non-zero group");
            weight -= first as i16;
            let body = &groups[first..=last];
            (body.len() as i16, weight, body)
        }
    };
    out.put_i16(ndigits);
    out.put_i16(weight);
    out.put_u16(if value < 0 { 0x4000 } else { 0 });
    out.put_u16(scale);
    for g in body {
        out.put_i16(*g);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Schema};
    use futures::StreamExt;
    use pgwire::api::portal::Format;
    use pgwire::types::format::FormatOptions;

    use super::*;

    /// The same batch through the fast path and through the general
    /// encoder gives the same bytes, in text and in binary.
    #[tokio::test]
    async fn fast_rows_match_the_general_encoder() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("i2", DataType::Int16, true),
            Field::new("i4", DataType::Int32, true),
            Field::new("i8", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
            Field::new("d", DataType::Date32, true),
            Field::new("n", DataType::Decimal128(15, 2), true),
            Field::new("n0", DataType::Decimal128(38, 0), true),
            Field::new("n6", DataType::Decimal128(20, 6), true),
            Field::new("b", DataType::Boolean, true),
        ]));
        let numerics: Vec<Option<i128>> = vec![
            Some(0),
            Some(1),
            Some(-1),
            Some(5),
            Some(-50),
            Some(12_345),
            Some(100_000_000),
            Some(-9_999_999_999_999),
            Some(10_000),
            Some(123_456_789_012),
            None,
        ];
        let n = numerics.len();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int16Array::from_iter((0..n).map(|i| {
                    (i != 3).then_some([0, -1, i16::MIN, 0, i16::MAX, 7][i % 6])
                }))),
                Arc::new(Int32Array::from_iter(
                    (0..n as i32).map(|i| Some(i * -31_337)),
                )),
                Arc::new(Int64Array::from_iter(
                    (0..n as i64).map(|i| (i != 4).then_some(i64::MAX - i * 1_000_000_007)),
                )),
                Arc::new(StringArray::from_iter((0..n).map(|i| {
                    (i != 2).then(|| ["", "a", "héllo, \"world\"", "x\ny"][i % 4].to_string())
                }))),
                Arc::new(Date32Array::from_iter((0..n as i32).map(|i| {
                    (i != 5).then_some([0, -1, 10_957, 19_000, -719_162, 2_932_896][i as usize % 6])
                }))),
                Arc::new(
                    Decimal128Array::from(numerics.clone())
                        .with_precision_and_scale(15, 2)
                        .unwrap(),
                ),
                Arc::new(
                    Decimal128Array::from(numerics.clone())
                        .with_precision_and_scale(38, 0)
                        .unwrap(),
                ),
                Arc::new(
                    Decimal128Array::from(numerics.clone())
                        .with_precision_and_scale(20, 6)
                        .unwrap(),
                ),
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| (i != 6).then_some(i % 2 == 0)),
                )),
            ],
        )
        .unwrap();
        let options = Arc::new(FormatOptions::default());
        for format in [Format::UnifiedText, Format::UnifiedBinary] {
            let fields =
                Arc::new(super::super::types::row_description(&schema, &format, &options).unwrap());
            let tags = vec![None; schema.fields().len()];
            let fast = encode_batch(&batch, &fields, &tags).expect("every column is fast");
            let general: Vec<DataRow> = super::super::types::encode_general(
                fields.clone(),
                schema.clone(),
                vec![batch.clone()],
            )
            .map(|r| r.unwrap())
            .collect()
            .await;
            assert_eq!(fast.len(), general.len());
            for (row, (a, b)) in fast.iter().zip(&general).enumerate() {
                assert_eq!(a.field_count, b.field_count);
                let binary = matches!(format, Format::UnifiedBinary);
                for (col, (x, y)) in values(&a.data).into_iter().zip(values(&b.data)).enumerate() {
                    if binary && (5..=7).contains(&col) {
                        // rust_decimal (behind the general encoder) keeps
                        // trailing zero digits and drops a zero's scale;
                        // Postgres does neither (checked below). Same value.
                        use postgres_types::FromSql;
                        let decode = |v: Option<&[u8]>| {
                            v.map(|v| rust_decimal::Decimal::from_sql(&Type::NUMERIC, v).unwrap())
                        };
                        assert_eq!(decode(x), decode(y), "row {row} column {col}");
                    } else {
                        assert_eq!(x, y, "{format:?} row {row} column {col}");
                    }
                }
            }
        }
    }

    /// The values of a DataRow's body (None for NULL).
    fn values(mut data: &[u8]) -> Vec<Option<&[u8]>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let len = i32::from_be_bytes(data[..4].try_into().unwrap());
            data = &data[4..];
            if len < 0 {
                out.push(None);
            } else {
                out.push(Some(&data[..len as usize]));
                data = &data[len as usize..];
            }
        }
        out
    }

    #[test]
    fn numeric_zero_keeps_its_scale_in_binary() {
        let mut out = BytesMut::new();
        numeric_binary(0, 2, &mut out);
        assert_eq!(&out[..], &[0, 0, 0, 0, 0, 0, 0, 2]);
        // 0.05: one digit (500) at weight -1; -123.45: 123 and 4500.
        out.clear();
        numeric_binary(5, 2, &mut out);
        assert_eq!(&out[..], &[0, 1, 0xff, 0xff, 0, 0, 0, 2, 0x01, 0xf4]);
        out.clear();
        numeric_binary(-12_345, 2, &mut out);
        assert_eq!(&out[..], &[0, 2, 0, 0, 0x40, 0, 0, 2, 0, 123, 0x11, 0x94]);
    }

    #[test]
    fn numeric_binary_agrees_with_the_digit_by_digit_encoding() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = match i % 4 {
                0 => (seed % 1000) as i128 - 500,
                1 => seed as i64 as i128,
                2 => (seed as i128) * 1_000_000_000_007,
                _ => (seed % 100_000_000) as i128 * 10_000,
            };
            let scale = (i % 13) as u16;
            let (mut fast, mut wide) = (BytesMut::new(), BytesMut::new());
            numeric_binary(value, scale, &mut fast);
            numeric_binary_wide(value, scale, &mut wide);
            assert_eq!(fast, wide, "{value} scale {scale}");
        }
        let mut out = BytesMut::new();
        numeric_binary(i128::MAX, 3, &mut out);
        assert_eq!(i16::from_be_bytes([out[0], out[1]]), 10);
    }

    #[test]
    fn numerics_in_text() {
        let text = |v: i128, s: u16| {
            let mut out = BytesMut::new();
            numeric_text(v, s, &mut out);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(text(0, 2), "0.00");
        assert_eq!(text(-5, 2), "-0.05");
        assert_eq!(text(12_345, 2), "123.45");
        assert_eq!(text(-7, 0), "-7");
        assert_eq!(text(7, 4), "0.0007");
        assert_eq!(text(-70, 2), "-0.70");
        assert_eq!(text(i128::MIN + 1, 0).len(), 40);
    }
}
