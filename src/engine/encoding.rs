//! How a segment keeps its columns: the "main" store of a column table.
//!
//! A segment that is no longer merged with its neighbours (it holds more
//! than [`SEALED_ROWS`] rows) keeps each column in the smallest of a few
//! lightweight encodings, as SAP HANA's main store and DuckDB's row groups
//! do:
//!
//! - integers, dates, times, timestamps and decimals as offsets from the
//!   segment's least value in the narrowest unsigned type that holds them
//!   (frame of reference): TPC-H's `l_quantity` takes one byte instead of
//!   sixteen, a date two instead of four;
//! - strings with few distinct values (at most one per eight rows, and at
//!   most 65,536) as one- or two-byte codes into a dictionary;
//! - other strings compressed one by one with FSST (Boncz, Neumann and
//!   Leis' fast static symbol tables, as DuckDB and Vortex keep strings):
//!   up to 255 symbols of one to eight bytes, learnt from a sample of the
//!   segment, each replaced by a one-byte code. TPC-H's comments take a
//!   third of their bytes, and each row still decodes on its own, so a
//!   filter or take runs on the compressed strings;
//! - anything else as the plain Arrow array.
//!
//! Scans decode only the rows and columns they read, after zone maps have
//! skipped what cannot match, and filters decode their own columns first
//! so the other columns are decoded only for the rows that pass (see
//! `scan.rs`). Every encoding keeps the column's null bitmap as it is, and
//! every decode gives back the exact logical array: the encodings are
//! invisible above this module.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{make_array, MutableArrayData};
use datafusion::arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BinaryArray, BooleanArray, PrimitiveArray,
    StringArray, UInt16Array, UInt32Array, UInt8Array,
};
use datafusion::arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::{
    ArrowNativeType, ArrowNativeTypeOp, DataType, Date32Type, Date64Type, Decimal128Type,
    Int16Type, Int32Type, Int64Type, SchemaRef, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result};

/// Segments with more than this many rows are sealed: the binary-counter
/// merge of small appends merges them at most once more (see `table.rs`),
/// so they are encoded when they are made.
pub const SEALED_ROWS: usize = super::table::TARGET_BATCH_ROWS / 2;

/// The least rows of a segment that is encoded: one more than
/// [`SEALED_ROWS`], or `QUIVER_ENCODE_MIN_ROWS` from the environment (tests set 1 to run every
/// query over encoded segments; 0 turns encoding off).
fn encode_min_rows() -> Option<usize> {
    static MIN: OnceLock<Option<usize>> = OnceLock::new();
    *MIN.get_or_init(|| {
        match std::env::var("QUIVER_ENCODE_MIN_ROWS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(0) => None,
            Some(rows) => Some(rows),
            None => Some(SEALED_ROWS + 1),
        }
    })
}

/// Whether strings the dictionary does not take are compressed with FSST:
/// `QUIVER_ENCODE_FSST=0` in the environment keeps them plain, to compare.
fn fsst_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("QUIVER_ENCODE_FSST").map_or(true, |v| v != "0"))
}

/// Calls `$f::<T>$args` with the Arrow primitive type `T` of the
/// integer, date, time, timestamp and decimal types that are kept as
/// offsets; None for other types.
macro_rules! by_type {
    ($data_type:expr, $f:ident, $args:tt) => {
        match $data_type {
            DataType::Int16 => Some($f::<Int16Type> $args),
            DataType::Int32 => Some($f::<Int32Type> $args),
            DataType::Int64 => Some($f::<Int64Type> $args),
            DataType::Date32 => Some($f::<Date32Type> $args),
            DataType::Date64 => Some($f::<Date64Type> $args),
            DataType::Time64(TimeUnit::Microsecond) => Some($f::<Time64MicrosecondType> $args),
            DataType::Timestamp(TimeUnit::Second, _) => Some($f::<TimestampSecondType> $args),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                Some($f::<TimestampMillisecondType> $args)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Some($f::<TimestampMicrosecondType> $args)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                Some($f::<TimestampNanosecondType> $args)
            }
            DataType::Decimal128(..) => Some($f::<Decimal128Type> $args),
            _ => None,
        }
    };
}

mod logged;

/// A copy of `array` in buffers of its own (an array decoded from an IPC
/// message points into the whole message body, and holds and is counted
/// as all of it).
pub fn owned(array: &dyn Array) -> std::result::Result<ArrayRef, ArrowError> {
    let data = array.to_data();
    let mut copy = MutableArrayData::new(vec![&data], false, data.len());
    copy.try_extend(0, 0, data.len())?;
    Ok(make_array(copy.freeze()))
}

/// Whether columns of `data_type` may be kept as offsets.
fn keeps_offsets(data_type: &DataType) -> bool {
    fn known<T: ArrowPrimitiveType>() {}
    by_type!(data_type, known, ()).is_some()
}

/// One column of a segment as it is kept.
#[derive(Debug, Clone)]
pub enum Encoded {
    /// The Arrow array itself.
    Plain(ArrayRef),
    /// value = `base` + offset; `offsets` is a `UInt8`/`16`/`32`/`64`
    /// array with the column's null bitmap, `data_type` the column's type.
    Offset {
        offsets: ArrayRef,
        base: i128,
        data_type: DataType,
    },
    /// value = `values[codes]`; `codes` is a `UInt8` or `UInt16` array
    /// with the column's null bitmap, `values` a `Utf8` array.
    Dict { codes: ArrayRef, values: ArrayRef },
    /// value = `symbols` decompressing `codes`; `codes` is a `Binary`
    /// array with the column's null bitmap (null rows have no codes), the
    /// column a `Utf8` one.
    Fsst {
        codes: ArrayRef,
        symbols: Arc<Symbols>,
    },
}

impl Encoded {
    /// The smallest encoding of `array`.
    pub fn encode(array: &ArrayRef) -> Encoded {
        if array.null_count() == array.len() {
            return Encoded::Plain(array.clone());
        }
        let encoded = match array.data_type() {
            DataType::Utf8 => {
                let strings = array.as_string::<i32>();
                dictionary(strings).or_else(|| fsst(strings))
            }
            data_type => by_type!(data_type, offsets, (array)).flatten(),
        };
        encoded.unwrap_or_else(|| Encoded::Plain(array.clone()))
    }

    /// `len` rows from `offset`, as kept.
    pub fn slice(&self, offset: usize, len: usize) -> Encoded {
        match self {
            Encoded::Plain(array) => Encoded::Plain(array.slice(offset, len)),
            Encoded::Offset {
                offsets,
                base,
                data_type,
            } => Encoded::Offset {
                offsets: offsets.slice(offset, len),
                base: *base,
                data_type: data_type.clone(),
            },
            Encoded::Dict { codes, values } => Encoded::Dict {
                codes: codes.slice(offset, len),
                values: values.clone(),
            },
            Encoded::Fsst { codes, symbols } => Encoded::Fsst {
                codes: codes.slice(offset, len),
                symbols: symbols.clone(),
            },
        }
    }

    pub fn null_count(&self) -> usize {
        self.physical().null_count()
    }

    /// The array the encoding keeps per row.
    fn physical(&self) -> &ArrayRef {
        match self {
            Encoded::Plain(array) => array,
            Encoded::Offset { offsets, .. } => offsets,
            Encoded::Dict { codes, .. } | Encoded::Fsst { codes, .. } => codes,
        }
    }

    /// Bytes of memory the column holds.
    pub fn memory_size(&self) -> usize {
        match self {
            Encoded::Dict { codes, values } => {
                codes.get_array_memory_size() + values.get_array_memory_size()
            }
            Encoded::Fsst { codes, .. } => {
                codes.get_array_memory_size() + std::mem::size_of::<Symbols>()
            }
            other => other.physical().get_array_memory_size(),
        }
    }

    /// The same encoding over other rows: `select` applied to the
    /// per-row array (a slice, filter or take).
    fn select(&self, select: impl Fn(&ArrayRef) -> Result<ArrayRef>) -> Result<Encoded> {
        Ok(match self {
            Encoded::Plain(array) => Encoded::Plain(select(array)?),
            Encoded::Offset {
                offsets,
                base,
                data_type,
            } => Encoded::Offset {
                offsets: select(offsets)?,
                base: *base,
                data_type: data_type.clone(),
            },
            Encoded::Dict { codes, values } => Encoded::Dict {
                codes: select(codes)?,
                values: values.clone(),
            },
            Encoded::Fsst { codes, symbols } => Encoded::Fsst {
                codes: select(codes)?,
                symbols: symbols.clone(),
            },
        })
    }

    /// The column as its Arrow array.
    pub fn decode(&self) -> Result<ArrayRef> {
        match self {
            Encoded::Plain(array) => Ok(array.clone()),
            Encoded::Dict { codes, values } => {
                let short = match (
                    codes.as_primitive_opt::<UInt8Type>(),
                    values.as_string_opt(),
                ) {
                    (Some(codes), Some(values)) => short_strings(values, codes)?,
                    _ => None,
                };
                Ok(match short {
                    Some(array) => array,
                    None => take(values, codes, None)?,
                })
            }
            Encoded::Fsst { codes, symbols } => symbols.decompress(codes.as_binary::<i32>()),
            Encoded::Offset {
                offsets,
                base,
                data_type,
            } => by_type!(data_type, widen, (offsets, *base, data_type)).ok_or_else(|| {
                DataFusionError::Internal(format!("offsets kept for a {data_type} column"))
            }),
        }
    }
}

/// Arrow's `take` for the common dictionary: one-byte codes into strings
/// of at most 32 bytes (TPC-H's flags, modes and instructions). Each row
/// copies its value's whole block (a fixed-size copy: two vector moves)
/// and moves on by the value's length, where `take` called memcpy once per
/// row: decoding these columns was a seventh of the server's CPU in a
/// fetch of the whole of lineitem. None for longer values.
fn short_strings(values: &StringArray, codes: &UInt8Array) -> Result<Option<ArrayRef>> {
    let longest = values.offsets().lengths().max().unwrap_or(0);
    Ok(if longest <= 16 {
        short_strings_in::<16>(values, codes)?
    } else if longest <= 32 {
        short_strings_in::<32>(values, codes)?
    } else {
        None
    })
}

fn short_strings_in<const BLOCK: usize>(
    values: &StringArray,
    codes: &UInt8Array,
) -> Result<Option<ArrayRef>> {
    if values.len() > 256 || values.null_count() > 0 {
        return Ok(None);
    }
    // Every code has a block and a length; codes past the values (none
    // are made) would read an empty string.
    let mut blocks = [[0u8; BLOCK]; 256];
    let mut lengths = [0usize; 256];
    for (i, value) in values.iter().enumerate() {
        let value = value.unwrap_or_default().as_bytes();
        blocks[i][..value.len()].copy_from_slice(value);
        lengths[i] = value.len();
    }
    let nulls = codes.nulls();
    // Null rows are empty.
    let length = |row: usize, code: u8| match nulls {
        Some(nulls) if nulls.is_null(row) => 0,
        _ => lengths[code as usize],
    };
    let total: usize = (codes.values().iter().enumerate())
        .map(|(row, &code)| length(row, code))
        .sum();
    if total > i32::MAX as usize {
        return Ok(None);
    }
    let mut offsets = Vec::with_capacity(codes.len() + 1);
    let mut data = vec![0u8; total + BLOCK];
    let mut at = 0;
    offsets.push(0i32);
    for (row, &code) in codes.values().iter().enumerate() {
        data[at..at + BLOCK].copy_from_slice(&blocks[code as usize]);
        at += length(row, code);
        offsets.push(at as i32);
    }
    data.truncate(total);
    let strings = StringArray::try_new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(data),
        nulls.cloned(),
    )?;
    Ok(Some(Arc::new(strings)))
}

/// Values that offsets are taken from: the signed integers Arrow's
/// integer, date, time, timestamp and decimal types are made of.
trait Wide: ArrowNativeType + ArrowNativeTypeOp {
    fn wide(self) -> i128;
    fn narrow(value: i128) -> Self;
}

macro_rules! wide {
    ($($t:ty),*) => {$(
        impl Wide for $t {
            fn wide(self) -> i128 {
                self as i128
            }
            fn narrow(value: i128) -> Self {
                value as $t
            }
        }
    )*};
}
wide!(i16, i32, i64, i128);

/// Frame of reference: the values as unsigned offsets from their least,
/// when the offsets fit a type narrower than the values'.
fn offsets<T>(array: &ArrayRef) -> Option<Encoded>
where
    T: ArrowPrimitiveType,
    T::Native: Wide,
{
    let values = array.as_primitive::<T>();
    let mut min = i128::MAX;
    let mut max = i128::MIN;
    let mut see = |v: T::Native| {
        let v = v.wide();
        min = min.min(v);
        max = max.max(v);
    };
    match values.nulls() {
        None => values.values().iter().for_each(|&v| see(v)),
        Some(nulls) => nulls.valid_indices().for_each(|i| see(values.values()[i])),
    }
    // Null slots may hold anything: their offsets wrap, and stay null.
    let range = max.checked_sub(min)? as u128;
    let width = std::mem::size_of::<T::Native>();
    let offsets: ArrayRef = if range <= u8::MAX as u128 && width > 1 {
        Arc::new(values.unary::<_, UInt8Type>(|v| v.wide().wrapping_sub(min) as u8))
    } else if range <= u16::MAX as u128 && width > 2 {
        Arc::new(values.unary::<_, UInt16Type>(|v| v.wide().wrapping_sub(min) as u16))
    } else if range <= u32::MAX as u128 && width > 4 {
        Arc::new(values.unary::<_, UInt32Type>(|v| v.wide().wrapping_sub(min) as u32))
    } else if range <= u64::MAX as u128 && width > 8 {
        Arc::new(values.unary::<_, UInt64Type>(|v| v.wide().wrapping_sub(min) as u64))
    } else {
        return None;
    };
    Some(Encoded::Offset {
        offsets,
        base: min,
        data_type: array.data_type().clone(),
    })
}

/// The values back from their offsets.
fn widen<T>(offsets: &ArrayRef, base: i128, data_type: &DataType) -> ArrayRef
where
    T: ArrowPrimitiveType,
    T::Native: Wide,
{
    let base = T::Native::narrow(base);
    fn add<N: Wide>(base: N, offset: usize) -> N {
        base.add_wrapping(N::usize_as(offset))
    }
    let values: PrimitiveArray<T> = match offsets.data_type() {
        DataType::UInt8 => offsets
            .as_primitive::<UInt8Type>()
            .unary(|o| add(base, o as usize)),
        DataType::UInt16 => offsets
            .as_primitive::<UInt16Type>()
            .unary(|o| add(base, o as usize)),
        DataType::UInt32 => offsets
            .as_primitive::<UInt32Type>()
            .unary(|o| add(base, o as usize)),
        _ => offsets
            .as_primitive::<UInt64Type>()
            .unary(|o| add(base, o as usize)),
    };
    Arc::new(values.with_data_type(data_type.clone()))
}

/// Codes into a dictionary, when at most one row in eight has a value
/// not seen before (and there are at most 65,536 values).
fn dictionary(strings: &StringArray) -> Option<Encoded> {
    let limit = (strings.len() / 8).min(u16::MAX as usize + 1);
    // foldhash: std's SipHash was 3% of a COPY's samples.
    let mut seen: datafusion::common::HashMap<&str, u16> = Default::default();
    let mut codes = Vec::with_capacity(strings.len());
    let mut values: Vec<&str> = Vec::new();
    for i in 0..strings.len() {
        if strings.is_null(i) {
            codes.push(0);
            continue;
        }
        let value = strings.value(i);
        let code = match seen.get(value) {
            Some(&code) => code,
            None => {
                if values.len() == limit {
                    return None;
                }
                let code = values.len() as u16;
                seen.insert(value, code);
                values.push(value);
                code
            }
        };
        codes.push(code);
    }
    let nulls = strings.nulls().cloned();
    let codes: ArrayRef = if values.len() <= u8::MAX as usize + 1 {
        Arc::new(UInt8Array::new(
            codes.into_iter().map(|c| c as u8).collect(),
            nulls,
        ))
    } else {
        Arc::new(UInt16Array::new(codes.into(), nulls))
    };
    Some(Encoded::Dict {
        codes,
        values: Arc::new(StringArray::from(values)),
    })
}

/// A segment column's FSST symbol table: what its codes stand for.
pub struct Symbols {
    symbols: [fsst::Symbol; 255],
    lengths: [u8; 255],
    /// Plain bytes per compressed byte over the segment, to size decodes.
    ratio: f64,
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Symbols(ratio {:.2})", self.ratio)
    }
}

impl Symbols {
    /// The strings `codes` stand for.
    fn decompress(&self, codes: &BinaryArray) -> Result<ArrayRef> {
        let decompressor = fsst::Decompressor::new(&self.symbols, &self.lengths);
        let compressed = codes.offsets().last().copied().unwrap_or(0)
            - codes.offsets().first().copied().unwrap_or(0);
        let mut values: Vec<u8> =
            Vec::with_capacity((compressed as f64 * self.ratio) as usize + 64);
        let mut offsets: Vec<i32> = Vec::with_capacity(codes.len() + 1);
        offsets.push(0);
        for i in 0..codes.len() {
            let code = codes.value(i);
            // The decompressor writes whole 8-byte symbols: room for the
            // longest a code can stand for, past the end.
            values.reserve(code.len() * 8 + 8);
            let written = decompressor.decompress_into(code, values.spare_capacity_mut());
            // SAFETY: the decompressor initialised `written` bytes.
            unsafe { values.set_len(values.len() + written) };
            let end = i32::try_from(values.len()).map_err(|_| {
                DataFusionError::ResourcesExhausted(
                    "a decoded string column is over 2 GiB".to_string(),
                )
            })?;
            offsets.push(end);
        }
        // SAFETY: the offsets rise from 0 to the bytes written, and the
        // bytes are exactly the UTF-8 strings `fsst` compressed (FSST is
        // lossless and never splits a string across rows).
        let strings = unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
                Buffer::from_vec(values),
                codes.nulls().cloned(),
            )
        };
        Ok(Arc::new(strings))
    }
}

/// Each string compressed with a symbol table learnt from a sample of
/// them, when that takes at most four fifths of the bytes (and FSST is on).
fn fsst(strings: &StringArray) -> Option<Encoded> {
    if !fsst_on() {
        return None;
    }
    let values: Vec<&[u8]> = (0..strings.len())
        .map(|i| match strings.is_null(i) {
            true => &[][..],
            false => strings.value(i).as_bytes(),
        })
        .collect();
    let plain: usize = values.iter().map(|v| v.len()).sum();
    if plain == 0 {
        return None;
    }
    let compressor = fsst::Compressor::train(&values);
    let mut compressed = Vec::new();
    let mut ends: Vec<u64> = Vec::with_capacity(values.len());
    compressor.compress_bulk_into::<{ fsst::Compressor::DEFAULT_BULK_LANES }>(
        &values,
        &mut compressed,
        &mut ends,
    );
    if compressed.len() > plain / 5 * 4 {
        return None;
    }
    // The compressor reserves twice the input: keep only what is used.
    compressed.shrink_to_fit();
    let offsets: Vec<i32> = std::iter::once(0)
        .chain(ends.iter().map(|&end| end as i32))
        .collect();
    let codes = BinaryArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(compressed),
        strings.nulls().cloned(),
    );
    let parts = compressor.into_parts();
    Some(Encoded::Fsst {
        symbols: Arc::new(Symbols {
            symbols: parts.symbols,
            lengths: parts.lengths,
            ratio: plain as f64 / codes.value_data().len() as f64,
        }),
        codes: Arc::new(codes),
    })
}

/// Which rows of a segment to decode.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    All,
    /// `len` rows from `offset`.
    Range(usize, usize),
    /// The rows whose mask bit is set (the mask covers every row).
    Mask(&'a BooleanArray),
    /// These rows, in this order.
    Take(&'a UInt32Array),
}

impl Rows<'_> {
    fn select(&self, array: &ArrayRef) -> Result<ArrayRef> {
        Ok(match self {
            Rows::All => array.clone(),
            Rows::Range(offset, len) => array.slice(*offset, *len),
            Rows::Mask(mask) => filter(array, mask)?,
            Rows::Take(indices) => take(array, indices, None)?,
        })
    }
}

/// The rows of one segment, column by column as kept.
#[derive(Debug)]
pub struct Stored {
    schema: SchemaRef,
    columns: Vec<Encoded>,
    rows: usize,
    bytes: usize,
    /// Per column, the bytes of its plain Arrow array (what a decode of
    /// every row makes).
    plain: Vec<usize>,
}

impl Stored {
    /// Keeps `batch`, encoded if it is sealed and encoding is on.
    pub fn new(batch: RecordBatch) -> Stored {
        if encode_min_rows().is_some_and(|min| batch.num_rows() >= min) {
            Stored::encoded(batch)
        } else {
            Stored::plain(batch)
        }
    }

    /// Keeps `batch` as it is.
    pub fn plain(batch: RecordBatch) -> Stored {
        Stored::from_columns(&batch, |a| Encoded::Plain(a.clone()))
    }

    /// Keeps every column of `batch` in its smallest encoding.
    pub fn encoded(batch: RecordBatch) -> Stored {
        Stored::from_columns(&batch, Encoded::encode)
    }

    fn from_columns(batch: &RecordBatch, encode: impl Fn(&ArrayRef) -> Encoded) -> Stored {
        let columns: Vec<Encoded> = batch.columns().iter().map(encode).collect();
        Stored {
            schema: batch.schema(),
            bytes: columns.iter().map(Encoded::memory_size).sum(),
            plain: batch
                .columns()
                .iter()
                .map(|c| c.get_array_memory_size())
                .collect(),
            columns,
            rows: batch.num_rows(),
        }
    }

    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Bytes of memory the rows take, as kept.
    pub fn memory_size(&self) -> usize {
        self.bytes
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Bytes of column `column` decoded.
    pub fn plain_size(&self, column: usize) -> usize {
        self.plain[column]
    }

    /// Column `column` as kept.
    pub fn encoded_column(&self, column: usize) -> &Encoded {
        &self.columns[column]
    }

    /// Column `column`, every row, decoded.
    pub fn column(&self, column: usize) -> Result<ArrayRef> {
        self.columns[column].decode()
    }

    /// Some rows of some columns (all without a projection), decoded.
    pub fn rows(&self, projection: Option<&[usize]>, rows: Rows) -> Result<RecordBatch> {
        let (schema, columns): (SchemaRef, Vec<usize>) = match projection {
            Some(columns) => (Arc::new(self.schema.project(columns)?), columns.to_vec()),
            None => (self.schema.clone(), (0..self.columns.len()).collect()),
        };
        let arrays = columns
            .iter()
            .map(|&c| decode_rows(&self.columns[c], rows))
            .collect::<Result<Vec<_>>>()?;
        let count = match rows {
            Rows::All => self.rows,
            Rows::Range(_, len) => len,
            Rows::Mask(mask) => mask.true_count(),
            Rows::Take(indices) => indices.len(),
        };
        Ok(RecordBatch::try_new_with_options(
            schema,
            arrays,
            &datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(count)),
        )?)
    }
}

/// Some rows of one column, decoded: selected on the kept array first,
/// so only the selected rows are decoded.
pub fn decode_rows(column: &Encoded, rows: Rows) -> Result<ArrayRef> {
    match rows {
        Rows::All => column.decode(),
        _ => column.select(|a| rows.select(a))?.decode(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Date32Array, Decimal128Array, Int32Array, Int64Array, Time64MicrosecondArray,
        TimestampMicrosecondArray, TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    fn round_trip(array: ArrayRef) -> Encoded {
        let encoded = Encoded::encode(&array);
        assert_eq!(&encoded.decode().unwrap(), &array);
        // Every selection decodes to the same rows as the plain array.
        let n = array.len();
        let mask = BooleanArray::from((0..n).map(|i| i % 3 != 1).collect::<Vec<_>>());
        let indices = UInt32Array::from((0..n as u32).rev().step_by(2).collect::<Vec<_>>());
        for rows in [
            Rows::Range(1, n.saturating_sub(2)),
            Rows::Mask(&mask),
            Rows::Take(&indices),
        ] {
            let expected = rows.select(&array).unwrap();
            assert_eq!(&decode_rows(&encoded, rows).unwrap(), &expected);
        }
        encoded
    }

    fn physical_type(encoded: &Encoded) -> DataType {
        encoded.physical().data_type().clone()
    }

    #[test]
    fn integers_keep_offsets_in_the_narrowest_type() {
        let small = round_trip(Arc::new(Int64Array::from_iter_values(
            (0..1000).map(|i| 1_000_000 + i % 200),
        )));
        assert_eq!(physical_type(&small), DataType::UInt8);
        let wide = round_trip(Arc::new(Int64Array::from_iter_values(
            (0..1000).map(|i| -5_000_000_000 + i * 1_000_000),
        )));
        assert_eq!(physical_type(&wide), DataType::UInt32);
        // Extremes: the range does not fit anything narrower.
        let extremes = round_trip(Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])));
        assert!(matches!(extremes, Encoded::Plain(_)));
        let int32 = round_trip(Arc::new(Int32Array::from(vec![
            Some(i32::MIN),
            None,
            Some(i32::MIN + 65535),
        ])));
        assert_eq!(physical_type(&int32), DataType::UInt16);
    }

    #[test]
    fn nulls_dates_timestamps_and_decimals_come_back_exactly() {
        round_trip(Arc::new(Int64Array::from(vec![
            Some(7),
            None,
            Some(-3),
            None,
            Some(100),
        ])));
        let dates = round_trip(Arc::new(Date32Array::from_iter_values(
            (0..500).map(|i| 8000 + i * 5),
        )));
        assert_eq!(physical_type(&dates), DataType::UInt16);
        round_trip(Arc::new(
            TimestampNanosecondArray::from(vec![Some(1_700_000_000_000_000_000), None, Some(0)])
                .with_timezone("+02:00"),
        ));
        // An hour of microseconds fits 32 bits; the zone comes back.
        let hour = round_trip(Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                (0..1000).map(|i| 1_700_000_000_000_000 + i * 3_600_000),
            )
            .with_timezone("UTC"),
        ));
        assert_eq!(physical_type(&hour), DataType::UInt32);
        let times = round_trip(Arc::new(Time64MicrosecondArray::from(vec![
            Some(0),
            None,
            Some(59_000_000),
        ])));
        assert_eq!(physical_type(&times), DataType::UInt32);
        let prices = round_trip(Arc::new(
            Decimal128Array::from_iter_values((0..1000).map(|i| 90_000 + i * 7919 % 10_000_000))
                .with_precision_and_scale(15, 2)
                .unwrap(),
        ));
        assert_eq!(physical_type(&prices), DataType::UInt32);
        let huge = round_trip(Arc::new(
            Decimal128Array::from(vec![Some(i128::MIN / 2), None, Some(i128::MAX / 2)])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        ));
        assert!(matches!(huge, Encoded::Plain(_)));
    }

    #[test]
    fn repeated_strings_become_codes_and_unique_ones_are_compressed() {
        let modes = ["AIR", "MAIL", "SHIP", "TRUCK", "RAIL", "FOB", "REG AIR"];
        let strings: ArrayRef = Arc::new(StringArray::from(
            (0..1000)
                .map(|i| (i % 11 != 0).then(|| modes[i % modes.len()]))
                .collect::<Vec<_>>(),
        ));
        let dict = round_trip(strings.clone());
        assert_eq!(physical_type(&dict), DataType::UInt8);
        assert!(dict.memory_size() < strings.get_array_memory_size() / 2);
        let many: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..6000).map(|i| format!("v{}", i % 600)),
        ));
        assert_eq!(physical_type(&round_trip(many)), DataType::UInt16);
        // Values of 16 and 32 bytes (the two block sizes), one longer
        // (decoded by take), the empty string and nulls.
        for longest in [16, 17, 32, 33] {
            let values = ["", "x", "DELIVER IN PERSON", &"y".repeat(longest)];
            let strings: ArrayRef = Arc::new(StringArray::from(
                (0..1000)
                    .map(|i| (i % 7 != 3).then(|| values[i * 5 % values.len()]))
                    .collect::<Vec<_>>(),
            ));
            assert_eq!(physical_type(&round_trip(strings)), DataType::UInt8);
        }
        let unique: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("comment {i}")),
        ));
        assert!(matches!(round_trip(unique), Encoded::Fsst { .. }));
    }

    #[test]
    fn unique_text_is_compressed_with_fsst_and_comes_back_exactly() {
        let words = [
            "furiously",
            "ironic",
            "deposits",
            "sleep",
            "blithely",
            "pending",
        ];
        let text = |i: usize| -> Option<String> {
            match i % 13 {
                0 => None,
                1 => Some(String::new()),
                2 => Some(format!("naïve café № {i} — 東京 🦀")),
                3 => Some(format!("nul \0 inside {i}\0")),
                _ => Some(
                    (0..1 + i % 7)
                        .map(|w| words[(i * 7 + w * 3) % words.len()])
                        .collect::<Vec<_>>()
                        .join(" ")
                        + &format!(" {i}"),
                ),
            }
        };
        let strings: ArrayRef =
            Arc::new(StringArray::from((0..5000).map(text).collect::<Vec<_>>()));
        let encoded = round_trip(strings.clone());
        assert!(matches!(encoded, Encoded::Fsst { .. }));
        assert_eq!(physical_type(&encoded), DataType::Binary);
        assert!(encoded.memory_size() < strings.get_array_memory_size() / 2);
        // A slice of a slice decodes to the same rows.
        assert_eq!(
            &encoded.slice(100, 900).slice(7, 50).decode().unwrap(),
            &strings.slice(107, 50)
        );
        // Random CJK characters do not compress by a fifth: kept plain.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let noise: ArrayRef = Arc::new(StringArray::from_iter_values((0..2000).map(|_| {
            (0..12)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    char::from_u32(0x4e00 + (seed % 20000) as u32).unwrap()
                })
                .collect::<String>()
        })));
        assert!(matches!(round_trip(noise), Encoded::Plain(_)));
        // Only nulls and empty strings: nothing to compress.
        let empty: ArrayRef = Arc::new(StringArray::from(
            (0..100)
                .map(|i| (i % 2 == 0).then_some(""))
                .collect::<Vec<_>>(),
        ));
        round_trip(empty);
    }

    #[test]
    fn a_stored_segment_decodes_to_its_batch() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..=SEALED_ROWS as i64)),
                Arc::new(StringArray::from(
                    (0..=SEALED_ROWS)
                        .map(|i| (i % 5 != 0).then_some(["a", "b"][i % 2]))
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let stored = Stored::new(batch.clone());
        assert!(stored.memory_size() < batch.get_array_memory_size() / 2);
        assert_eq!(stored.rows(None, Rows::All).unwrap(), batch);
        assert_eq!(
            stored.rows(Some(&[1]), Rows::Range(10, 5)).unwrap(),
            batch.project(&[1]).unwrap().slice(10, 5)
        );
        // A projection of no columns still counts its rows.
        assert_eq!(
            stored
                .rows(Some(&[]), Rows::Range(0, 7))
                .unwrap()
                .num_rows(),
            7
        );
    }
}
