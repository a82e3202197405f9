//! COPY data on the wire: reading rows of text, CSV and binary COPY data
//! into Arrow columns, and writing result rows in those formats. The
//! values themselves are encoded by `sql::types`, as in DataRows.
//!
//! Over 800 lines: the three COPY formats in both directions share the field
//! splitter and the per-type decoders; its tests are a third of it.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::ScalarValue;
use pgwire::api::portal::Format;
use pgwire::error::PgWireResult;
use pgwire::types::format::FormatOptions;

use super::copy_columns::ColumnBuilder;
use super::types::{decode_text_row, encode_batches, row_description, uuid_text};
use crate::engine::stage::Staged;
use crate::engine::types::TaggedType;
use crate::error::{CopyFault, QuiverError, Result};
use crate::sql::{BadValue, CopyFormat, CopyIn, CopyOptions, CopyOut};

const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Data is parsed in pieces of about this size, on other threads, while
/// more arrives.
const CHUNK_BYTES: usize = if cfg!(test) { 64 << 10 } else { 8 << 20 };

/// A COPY FROM STDIN (or from a file) in progress. Text and CSV data is cut
/// at row ends into chunks that are parsed on their own threads as the data
/// arrives (at most one per core at a time), so parsing overlaps receiving
/// and uses every core; binary data is parsed at the end.
pub struct CopyInProgress {
    pub copy: CopyIn,
    /// Data not yet handed to a parser; it starts at a row boundary.
    data: Vec<u8>,
    /// How much of `data` has been scanned for row ends, whether the scan
    /// stopped in a quoted CSV field, and where the last complete row ends.
    scanned: usize,
    in_quote: bool,
    row_end: Option<usize>,
    /// Line number of the first line of `data`.
    first_line: usize,
    /// Chunks being parsed, in order.
    parsing: VecDeque<crate::workers::Task<Result<Parsed>>>,
    /// Chunks parsed, in order.
    parsed: Vec<Parsed>,
    /// Buffers of chunks already parsed, for the next chunks: fresh ones
    /// would be faulted in (and zeroed by the kernel) every time.
    spare: Vec<Vec<u8>>,
    received: usize,
}

/// One chunk's rows, whether it held the end-of-data marker `\.`, and
/// the chunk's buffer once it is no longer needed.
struct Parsed {
    rows: CopyRows,
    ended: bool,
    buffer: Vec<u8>,
}

/// The rows of a COPY: plain batches of its columns, or staged for its
/// table (see [`CopyIn::stager`]).
pub enum CopyRows {
    Batches(Vec<RecordBatch>),
    Staged(Vec<Staged>),
}

impl CopyRows {
    /// One parsed batch, staged when the COPY stages its rows.
    fn of(copy: &CopyIn, batch: RecordBatch) -> Result<CopyRows> {
        Ok(match &copy.stager {
            Some(stager) => CopyRows::Staged(vec![stager.stage(vec![batch])?]),
            None => CopyRows::Batches(vec![batch]),
        })
    }

    pub fn rows(&self) -> usize {
        match self {
            CopyRows::Batches(batches) => batches.iter().map(|b| b.num_rows()).sum(),
            CopyRows::Staged(parts) => parts.iter().map(|p| p.rows()).sum(),
        }
    }

    /// Bytes the rows take (staged: as they will in the table).
    pub fn memory_bytes(&self) -> usize {
        match self {
            CopyRows::Batches(batches) => batches.iter().map(|b| b.get_array_memory_size()).sum(),
            CopyRows::Staged(parts) => parts.iter().map(|p| p.memory_bytes()).sum(),
        }
    }

    /// The rows as plain batches.
    pub fn into_batches(self) -> Result<Vec<RecordBatch>> {
        match self {
            CopyRows::Batches(batches) => Ok(batches),
            CopyRows::Staged(parts) => {
                let mut batches = Vec::new();
                for part in parts {
                    batches.extend(part.into_batches()?);
                }
                Ok(batches)
            }
        }
    }

    /// Adds `more` after these rows.
    pub fn append(&mut self, more: CopyRows) -> Result<()> {
        let rows = std::mem::replace(self, CopyRows::Batches(Vec::new()));
        *self = match (rows, more) {
            (CopyRows::Batches(none), more) if none.is_empty() => more,
            (CopyRows::Batches(mut batches), CopyRows::Batches(more)) => {
                batches.extend(more);
                CopyRows::Batches(batches)
            }
            (CopyRows::Staged(mut parts), CopyRows::Staged(more)) => {
                parts.extend(more);
                CopyRows::Staged(parts)
            }
            (rows, more) => {
                let mut batches = rows.into_batches()?;
                batches.extend(more.into_batches()?);
                CopyRows::Batches(batches)
            }
        };
        Ok(())
    }
}

impl CopyInProgress {
    pub fn new(copy: CopyIn) -> Self {
        CopyInProgress {
            copy,
            data: Vec::new(),
            scanned: 0,
            in_quote: false,
            row_end: None,
            first_line: 1,
            parsing: VecDeque::new(),
            parsed: Vec::new(),
            spare: Vec::new(),
            received: 0,
        }
    }

    /// Whether rows can be found without parsing: text format, or CSV
    /// whose escape is its quote (so quotes simply pair up).
    fn chunked(&self) -> bool {
        match self.copy.options.format {
            CopyFormat::Text => true,
            CopyFormat::Csv => self.copy.options.escape == self.copy.options.quote,
            _ => false,
        }
    }

    /// Takes more data; whole chunks of it start parsing on their own
    /// threads (a malformed row may fail here).
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        // A whole file arrives at once: cut it as if it came in pieces.
        for piece in bytes.chunks(CHUNK_BYTES / 8) {
            self.push_piece(piece)?;
        }
        Ok(())
    }

    fn push_piece(&mut self, bytes: &[u8]) -> Result<()> {
        self.received += bytes.len();
        self.data.extend_from_slice(bytes);
        if !self.chunked() || self.data.len() < CHUNK_BYTES {
            return Ok(());
        }
        self.scan_rows();
        let Some(end) = self.row_end.take() else {
            return Ok(());
        };
        // The rest goes into a buffer that will hold the next chunk.
        let mut rest = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES + (CHUNK_BYTES >> 2)));
        rest.extend_from_slice(&self.data[end..]);
        self.data.truncate(end);
        let chunk = std::mem::replace(&mut self.data, rest);
        self.scanned -= end;
        let first_line = self.first_line;
        self.first_line += chunk.iter().filter(|&&b| b == b'\n').count();
        // One chunk in flight per core: wait for the oldest beyond that
        // (which also slows the client down to the parsing rate).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        while self.parsing.len() >= threads {
            self.join_oldest()?;
        }
        let copy = self.copy.clone();
        self.parsing.push_back(crate::workers::spawn(move || {
            let mut parsed = parse_text(&copy, &chunk, first_line, first_line == 1, false)?;
            parsed.buffer = chunk;
            Ok(parsed)
        }));
        Ok(())
    }

    /// Moves `scanned` on through the data, noting where the last
    /// complete row ends. CSV is read as split_csv reads it: a quote opens
    /// a quoted field only at the start of a field; inside one, a doubled
    /// quote is a quote and newlines are data.
    fn scan_rows(&mut self) {
        let data = &self.data;
        let mut at = self.scanned;
        if self.copy.options.format != CopyFormat::Csv {
            if let Some(p) = memchr::memrchr(b'\n', &data[at..]) {
                self.row_end = Some(at + p + 1);
            }
            self.scanned = data.len();
            return;
        }
        let quote = self.copy.options.quote as u32 as u8;
        let delim = self.copy.options.delimiter as u32 as u8;
        while at < data.len() {
            if self.in_quote {
                let Some(p) = memchr::memchr(quote, &data[at..]) else {
                    at = data.len();
                    break;
                };
                let q = at + p;
                match data.get(q + 1) {
                    // Whether it closes the field depends on what follows.
                    None => {
                        at = q;
                        break;
                    }
                    Some(&next) if next == quote => at = q + 2,
                    Some(_) => {
                        self.in_quote = false;
                        at = q + 1;
                    }
                }
            } else {
                let Some(p) = memchr::memchr2(b'\n', quote, &data[at..]) else {
                    at = data.len();
                    break;
                };
                let q = at + p;
                if data[q] == b'\n' {
                    self.row_end = Some(q + 1);
                } else if q == 0 || data[q - 1] == delim || data[q - 1] == b'\n' {
                    self.in_quote = true;
                }
                at = q + 1;
            }
        }
        self.scanned = at;
    }

    fn join_oldest(&mut self) -> Result<()> {
        if let Some(handle) = self.parsing.pop_front() {
            let mut parsed = handle
                .join()
                .map_err(|_| QuiverError::Internal("a COPY parser thread panicked".into()))??;
            let mut buffer = std::mem::take(&mut parsed.buffer);
            buffer.clear();
            self.spare.push(buffer);
            self.parsed.push(parsed);
        }
        Ok(())
    }

    /// Bytes received so far.
    pub(crate) fn len(&self) -> usize {
        self.received
    }

    /// Parses the rest of the data and returns every row, in order, as
    /// batches of the COPY's columns (staged for its table when it stages).
    /// Blocks while parsing: call it off the async workers.
    pub fn finish(mut self) -> Result<CopyRows> {
        let copy = self.copy.clone();
        let last = match copy.options.format {
            CopyFormat::Parquet | CopyFormat::Json => {
                return Err(QuiverError::Internal(
                    "Parquet and JSON are read by DataFusion, not as COPY data".into(),
                ))
            }
            CopyFormat::Binary => Parsed {
                rows: CopyRows::of(&copy, read_binary(&copy, &self.data)?)?,
                ended: true,
                buffer: Vec::new(),
            },
            CopyFormat::Text | CopyFormat::Csv => {
                // Alone, the last chunk converts its columns in parallel.
                let alone = self.parsing.is_empty() && self.parsed.is_empty();
                parse_text(
                    &copy,
                    &self.data,
                    self.first_line,
                    self.first_line == 1,
                    alone,
                )?
            }
        };
        while !self.parsing.is_empty() {
            self.join_oldest()?;
        }
        self.parsed.push(last);
        let mut rows = CopyRows::Batches(Vec::new());
        for parsed in self.parsed {
            rows.append(parsed.rows)?;
            // Nothing after `\.` counts.
            if parsed.ended {
                break;
            }
        }
        Ok(rows)
    }
}

/// Text or CSV rows (a whole number of them) starting at `first_line`.
fn parse_text(
    copy: &CopyIn,
    data: &[u8],
    first_line: usize,
    header: bool,
    parallel: bool,
) -> Result<Parsed> {
    let text = std::str::from_utf8(data).map_err(|e| QuiverError::CopyData {
        message: format!("invalid byte sequence for encoding \"UTF8\": {e}"),
        context: format!("COPY {}", copy.table_name),
        fault: CopyFault::Value,
    })?;
    let columns = copy.columns.fields();
    let fields = if copy.options.format == CopyFormat::Csv {
        split_csv(text, &copy.options, columns, first_line, header)
    } else {
        split_text(text, &copy.options, columns, first_line, header)
    }
    .map_err(|e| e.into_error(copy))?;
    let ended = fields.ended;
    Ok(Parsed {
        rows: CopyRows::of(copy, to_batch(copy, fields, parallel)?)?,
        ended,
        buffer: Vec::new(),
    })
}

fn context(copy: &CopyIn, line: usize) -> String {
    format!("COPY {}, line {line}", copy.table_name)
}

fn bad_data(copy: &CopyIn, line: usize, message: String) -> QuiverError {
    QuiverError::CopyData {
        message,
        context: context(copy, line),
        fault: CopyFault::Row,
    }
}

/// The fields of COPY rows, column by column (parsed as they are read
/// where they are in their type's plain form), with the line each row
/// starts on (1-based, as Postgres counts them in error messages).
struct Fields<'a> {
    fields: &'a [FieldRef],
    columns: Vec<ColumnBuilder>,
    lines: Vec<usize>,
    /// Fields of the row being read.
    in_row: usize,
    /// The header line is read and dropped.
    skipping: bool,
    /// The data ended with `\.`.
    ended: bool,
}

/// A row with the wrong number of fields, or malformed data.
struct Malformed {
    line: usize,
    message: String,
}

impl Malformed {
    fn into_error(self, copy: &CopyIn) -> QuiverError {
        bad_data(copy, self.line, self.message)
    }
}

impl<'a> Fields<'a> {
    /// Room for the rows of `data` (one per line, about).
    fn new(fields: &'a [FieldRef], header: bool, data: &[u8]) -> Fields<'a> {
        let rows = memchr::memchr_iter(b'\n', data).count();
        let per_column = data.len() / fields.len().max(1);
        Fields {
            columns: fields
                .iter()
                .map(|f| ColumnBuilder::new(f, rows, per_column))
                .collect(),
            fields,
            lines: Vec::new(),
            in_row: 0,
            skipping: header,
            ended: false,
        }
    }

    fn push(&mut self, value: Option<&str>, line: usize) -> std::result::Result<(), Malformed> {
        if !self.skipping {
            let Some(column) = self.columns.get_mut(self.in_row) else {
                return Err(Malformed {
                    line,
                    message: "extra data after last expected column".into(),
                });
            };
            column.append(value);
        }
        self.in_row += 1;
        Ok(())
    }

    fn end_row(&mut self, line: usize) -> std::result::Result<(), Malformed> {
        let fields = std::mem::take(&mut self.in_row);
        if std::mem::take(&mut self.skipping) {
            return Ok(());
        }
        if fields < self.columns.len() {
            return Err(Malformed {
                line,
                message: format!("missing data for column \"{}\"", self.fields[fields].name()),
            });
        }
        self.lines.push(line);
        Ok(())
    }
}

/// Text format: one row per line, fields split at the delimiter,
/// backslash escapes, `\N` (or the NULL option) for NULL, `\.` ends.
fn split_text<'a>(
    text: &str,
    options: &CopyOptions,
    columns: &'a [FieldRef],
    first_line: usize,
    header: bool,
) -> std::result::Result<Fields<'a>, Malformed> {
    let mut fields = Fields::new(columns, header && options.header, text.as_bytes());
    let mut unescaped = String::new();
    // The data ends with a newline: nothing follows the last one.
    let last = text.split('\n').count() - 1;
    for (i, line) in text.split('\n').enumerate() {
        let n = first_line - 1 + i;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            fields.ended = true;
            break;
        }
        if line.is_empty() && i == last {
            break;
        }
        for raw in line.split(options.delimiter) {
            if raw == options.null {
                fields.push(None, n + 1)?;
            } else if raw.contains('\\') {
                unescaped.clear();
                unescape_text(raw, &mut unescaped);
                fields.push(Some(&unescaped), n + 1)?;
            } else {
                fields.push(Some(raw), n + 1)?;
            }
        }
        fields.end_row(n + 1)?;
    }
    Ok(fields)
}

fn unescape_text(raw: &str, out: &mut String) {
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some('x') => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push('x');
                } else if let Some(c) = char::from_u32(value) {
                    out.push(c);
                }
            }
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                if let Some(c) = char::from_u32(value) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
}

/// CSV: fields split at the delimiter, quoted fields may hold the
/// delimiter, quotes (escaped) and newlines; an unquoted field equal to
/// the NULL string is NULL, a quoted one never is. Unquoted fields are
/// sliced from the data as they are.
fn split_csv<'a>(
    text: &str,
    options: &CopyOptions,
    columns: &'a [FieldRef],
    first_line: usize,
    header: bool,
) -> std::result::Result<Fields<'a>, Malformed> {
    let one_byte = |c: char, what: &str| {
        u8::try_from(c).ok().filter(u8::is_ascii).ok_or(Malformed {
            line: 1,
            message: format!("COPY {what} must be a single one-byte character"),
        })
    };
    let delim = one_byte(options.delimiter, "delimiter")?;
    let quote = one_byte(options.quote, "quote")?;
    let escape = one_byte(options.escape, "escape")?;
    let bytes = text.as_bytes();
    let mut fields = Fields::new(columns, header && options.header, bytes);
    let mut quoted_value = String::new();
    let mut at = 0;
    let mut line = first_line;
    while at < bytes.len() {
        let start_line = line;
        if bytes[at..].starts_with(b"\\.")
            && matches!(bytes.get(at + 2), None | Some(b'\n' | b'\r'))
        {
            fields.ended = true;
            break;
        }
        loop {
            // One field, starting at `at`.
            let value: Option<&str> = if bytes.get(at) == Some(&quote) {
                at += 1;
                quoted_value.clear();
                let mut run = at;
                loop {
                    let Some(&c) = bytes.get(at) else {
                        return Err(Malformed {
                            line: start_line,
                            message: "unterminated CSV quoted field".into(),
                        });
                    };
                    if c == escape && escape != quote && bytes.get(at + 1) == Some(&quote) {
                        quoted_value.push_str(&text[run..at]);
                        quoted_value.push(quote as char);
                        at += 2;
                        run = at;
                    } else if c == quote {
                        quoted_value.push_str(&text[run..at]);
                        at += 1;
                        if escape == quote && bytes.get(at) == Some(&quote) {
                            quoted_value.push(quote as char);
                            at += 1;
                            run = at;
                        } else {
                            break;
                        }
                    } else {
                        if c == b'\n' {
                            line += 1;
                        }
                        at += 1;
                    }
                }
                // Anything up to the delimiter after the closing quote
                // belongs to the value, as Postgres reads it.
                let rest = at;
                at = field_end(bytes, at, delim);
                quoted_value.push_str(without_cr(bytes, &text[rest..at], at));
                Some(quoted_value.as_str())
            } else {
                let start = at;
                at = field_end(bytes, at, delim);
                let raw = without_cr(bytes, &text[start..at], at);
                (raw != options.null).then_some(raw)
            };
            fields.push(value, start_line)?;
            match bytes.get(at) {
                Some(b'\n') => {
                    at += 1;
                    line += 1;
                    break;
                }
                Some(_) => at += 1, // the delimiter
                None => break,
            }
        }
        fields.end_row(start_line)?;
    }
    Ok(fields)
}

/// Where an unquoted field (or the rest after a closing quote) ends: at
/// the delimiter, the end of the line or the end of the data.
fn field_end(bytes: &[u8], mut at: usize, delim: u8) -> usize {
    while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != delim {
        at += 1;
    }
    at
}

/// A field that ends a `\r\n` line, without the `\r`.
fn without_cr<'a>(bytes: &[u8], field: &'a str, end: usize) -> &'a str {
    match bytes.get(end) {
        Some(b'\n') | None => field.strip_suffix('\r').unwrap_or(field),
        _ => field,
    }
}

/// Rows of text fields into a batch of the COPY's columns.
/// Columns are converted in parallel, one thread per core.
fn to_batch(copy: &CopyIn, mut fields: Fields, parallel: bool) -> Result<RecordBatch> {
    let lines = std::mem::take(&mut fields.lines);
    let convert = |field: &Arc<Field>, values: &mut ColumnBuilder| {
        values.finish(field, &copy.zone, copy.date_order)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = fields.columns.len().div_ceil(threads).max(1);
    let mut work: Vec<(&Arc<Field>, &mut ColumnBuilder)> = copy
        .columns
        .fields()
        .iter()
        .zip(fields.columns.iter_mut())
        .collect();
    // Every column is converted; each reports its first bad value.
    let converted: Vec<std::result::Result<ArrayRef, BadValue>> =
        if !parallel || lines.len() < 10_000 || threads == 1 {
            work.into_iter()
                .map(|(field, values)| convert(field, values))
                .collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .chunks_mut(per_thread)
                    .map(|chunk| {
                        scope.spawn(|| {
                            chunk
                                .iter_mut()
                                .map(|(field, values)| convert(field, values))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|handle| handle.join().expect("a column conversion panicked"))
                    .collect()
            })
        };
    // As PostgreSQL reads row by row, field by field, the error it reports
    // is the first bad row's leftmost bad field.
    let mut arrays = Vec::with_capacity(converted.len());
    let mut first_bad: Option<BadValue> = None;
    for result in converted {
        match result {
            Ok(array) => arrays.push(array),
            Err(bad) => {
                if first_bad.as_ref().is_none_or(|first| bad.row < first.row) {
                    first_bad = Some(bad);
                }
            }
        }
    }
    if let Some(bad) = first_bad {
        return Err(QuiverError::CopyData {
            message: bad.message,
            context: format!(
                "{}, column {}: \"{}\"",
                context(copy, lines[bad.row]),
                bad.column,
                bad.value
            ),
            fault: if bad.out_of_range {
                CopyFault::OutOfRange
            } else {
                CopyFault::Value
            },
        });
    }
    rows_batch(copy, arrays, lines.len())
}

/// The COPY's columns as a batch of `rows` rows; a NULL in a NOT NULL
/// column is the constraint's violation (the one in the first such row).
fn rows_batch(copy: &CopyIn, arrays: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let first_null = copy
        .columns
        .fields()
        .iter()
        .zip(&arrays)
        .filter(|(field, array)| !field.is_nullable() && array.null_count() > 0)
        .filter_map(|(field, array)| {
            let row = array.nulls()?.iter().position(|valid| !valid)?;
            Some((row, field))
        })
        .min_by_key(|(row, _)| *row);
    if let Some((_, field)) = first_null {
        return Err(QuiverError::NotNullViolation {
            table: copy.table_name.clone(),
            column: field.name().clone(),
        });
    }
    Ok(RecordBatch::try_new_with_options(
        copy.columns.clone(),
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Binary format: signature, flags, header extension, then per row a
/// field count and length-prefixed values in each type's binary form.
fn read_binary(copy: &CopyIn, data: &[u8]) -> Result<RecordBatch> {
    let fail = |message: &str| QuiverError::CopyData {
        message: message.to_string(),
        context: format!("COPY {}", copy.table_name),
        fault: CopyFault::Row,
    };
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let slice = data
            .get(*at..*at + n)
            .ok_or_else(|| fail("unexpected end of data"))?;
        *at += n;
        Ok(slice)
    };
    if take(&mut at, BINARY_SIGNATURE.len())? != BINARY_SIGNATURE {
        return Err(fail("COPY file signature not recognized"));
    }
    let _flags = take(&mut at, 4)?;
    let ext = i32::from_be_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
    take(&mut at, ext.max(0) as usize)?;
    let fields = copy.columns.fields();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); fields.len()];
    let mut row = 0;
    loop {
        // The trailer (-1) is optional: the end of the data at a row
        // boundary ends it too, as in PostgreSQL (pgx sends no trailer).
        if at == data.len() {
            break;
        }
        let count = i16::from_be_bytes(take(&mut at, 2)?.try_into().expect("2 bytes"));
        if count == -1 {
            break;
        }
        row += 1;
        if count as usize != fields.len() {
            return Err(bad_data(
                copy,
                row,
                format!("row field count is {count}, expected {}", fields.len()),
            ));
        }
        for (i, field) in fields.iter().enumerate() {
            let len = i32::from_be_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
            if len < -1 {
                return Err(bad_data(copy, row, format!("invalid field size {len}")));
            }
            let value = if len == -1 {
                ScalarValue::try_from(field.data_type())?
            } else {
                let bytes = take(&mut at, len as usize)?;
                decode_binary(field, bytes).map_err(|message| {
                    bad_data(copy, row, format!("{message}, column {}", field.name()))
                })?
            };
            columns[i].push(value);
        }
    }
    let arrays = fields
        .iter()
        .zip(columns)
        .map(|(field, values)| {
            if values.is_empty() {
                Ok(datafusion::arrow::array::new_empty_array(field.data_type()))
            } else {
                Ok(ScalarValue::iter_to_array(values)?)
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    rows_batch(copy, arrays, row)
}

/// Days and microseconds between 1970-01-01 and Postgres' epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// An array in its binary form, elements of `element`'s type.
pub fn decode_binary_array(element: &Field, b: &[u8]) -> std::result::Result<ScalarValue, String> {
    crate::sql::pg_arrays::decode_array_binary(element, b, decode_binary)
}

/// One value in its type's binary form (binary COPY, bind parameters).
fn decode_binary(field: &Field, b: &[u8]) -> std::result::Result<ScalarValue, String> {
    let wrong = || {
        format!(
            "incorrect binary data format for type {}",
            field.data_type()
        )
    };
    let int = |n: usize| -> std::result::Result<i64, String> {
        if b.len() != n {
            return Err(wrong());
        }
        Ok(match n {
            2 => i16::from_be_bytes([b[0], b[1]]) as i64,
            4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_be_bytes(b.try_into().map_err(|_| wrong())?),
        })
    };
    let text = || String::from_utf8(b.to_vec()).map_err(|_| wrong());
    Ok(match field.data_type() {
        DataType::Boolean => ScalarValue::Boolean(Some(b.first().ok_or_else(wrong)? != &0)),
        DataType::Int16 => ScalarValue::Int16(Some(int(2)? as i16)),
        DataType::Int32 => ScalarValue::Int32(Some(int(4)? as i32)),
        DataType::Int64 => ScalarValue::Int64(Some(int(8)?)),
        DataType::Float32 => ScalarValue::Float32(Some(f32::from_bits(int(4)? as u32))),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_bits(int(8)? as u64))),
        DataType::Date32 => ScalarValue::Date32(Some(int(4)? as i32 + PG_EPOCH_DAYS)),
        DataType::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(int(8)?)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(int(8)? + PG_EPOCH_MICROS), tz.clone())
        }
        DataType::Binary => ScalarValue::Binary(Some(b.to_vec())),
        DataType::Interval(_) => {
            if b.len() != 16 {
                return Err(wrong());
            }
            let micros = i64::from_be_bytes(b[0..8].try_into().map_err(|_| wrong())?);
            let days = i32::from_be_bytes(b[8..12].try_into().map_err(|_| wrong())?);
            let months = i32::from_be_bytes(b[12..16].try_into().map_err(|_| wrong())?);
            ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(
                    months,
                    days,
                    micros * 1000,
                ),
            ))
        }
        DataType::Decimal128(p, s) => {
            let value = numeric_text(b).ok_or_else(wrong)?;
            ScalarValue::Utf8(Some(value))
                .cast_to(&DataType::Decimal128(*p, *s))
                .map_err(|e| e.to_string())?
        }
        DataType::Utf8 => match TaggedType::of(field) {
            Some(TaggedType::Uuid) => ScalarValue::Utf8(Some(uuid_text(b).ok_or_else(wrong)?)),
            Some(TaggedType::Jsonb) => match b.split_first() {
                Some((1, rest)) => {
                    ScalarValue::Utf8(Some(String::from_utf8(rest.to_vec()).map_err(|_| wrong())?))
                }
                _ => return Err(wrong()),
            },
            _ => ScalarValue::Utf8(Some(text()?)),
        },
        DataType::List(_) => {
            let element = crate::engine::types::element_field(field).expect("a list");
            return decode_binary_array(&element, b);
        }
        other => return Err(format!("binary COPY of type {other} is not supported")),
    })
}

/// Postgres' binary numeric (ndigits, weight, sign, dscale, base-10000
/// digits) as decimal text.
fn numeric_text(b: &[u8]) -> Option<String> {
    let word = |i: usize| Some(i16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<i32> = (0..ndigits)
        .map(|i| word(8 + 2 * i).map(|d| d as i32))
        .collect::<Option<_>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int_part.is_empty() {
            int_part = d.to_string();
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut w = weight + 1;
    while frac.len() < dscale {
        let d = if w < 0 {
            0
        } else {
            digits.get(w as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        w += 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int_part);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// The CopyData payloads of a COPY TO STDOUT: one per row (the header
/// goes with the first, the binary trailer on its own).
pub fn encode_copy_out(out: CopyOut, format: &FormatOptions) -> PgWireResult<Vec<Bytes>> {
    let binary = out.options.format == CopyFormat::Binary;
    let wire_format = if binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    let options = Arc::new(format.clone());
    let fields = Arc::new(row_description(&out.schema, &wire_format, &options)?);
    let mut messages = Vec::new();
    // The header travels with the first row (pgwire counts messages as
    // rows for the COPY tag).
    let mut header = BytesMut::new();
    if binary {
        header.put_slice(BINARY_SIGNATURE);
        header.put_i32(0);
        header.put_i32(0);
    } else if out.options.header {
        let names: Vec<Option<String>> = out
            .schema
            .fields()
            .iter()
            .map(|f| Some(f.name().clone()))
            .collect();
        header.put_slice(format_row(&names, &out.options).as_bytes());
    }
    let columns = out.schema.fields().len();
    let rows = futures::executor::block_on_stream(Box::pin(encode_batches(
        fields,
        out.schema.clone(),
        out.batches,
    )));
    for row in rows {
        let row = row?;
        if binary {
            header.put_i16(columns as i16);
            header.put_slice(&row.data);
        } else {
            header.put_slice(format_row(&decode_text_row(&row.data), &out.options).as_bytes());
        }
        messages.push(header.split().freeze());
    }
    // No rows: the header alone (the binary trailer is added by pgwire).
    if !header.is_empty() {
        messages.push(header.freeze());
    }
    Ok(messages)
}

/// One line of text or CSV COPY output, newline included.
fn format_row(values: &[Option<String>], options: &CopyOptions) -> String {
    let mut line = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            line.push(options.delimiter);
        }
        match value {
            None => line.push_str(&options.null),
            Some(v) if options.format == CopyFormat::Csv => {
                let needs_quotes = v.is_empty() && options.null.is_empty()
                    || *v == options.null
                    || v.contains(options.delimiter)
                    || v.contains(options.quote)
                    || v.contains('\n')
                    || v.contains('\r');
                if needs_quotes {
                    line.push(options.quote);
                    for c in v.chars() {
                        if c == options.quote || c == options.escape {
                            line.push(options.escape);
                        }
                        line.push(c);
                    }
                    line.push(options.quote);
                } else {
                    line.push_str(v);
                }
            }
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => line.push_str("\\\\"),
                        '\n' => line.push_str("\\n"),
                        '\r' => line.push_str("\\r"),
                        '\t' => line.push_str("\\t"),
                        '\u{8}' => line.push_str("\\b"),
                        '\u{c}' => line.push_str("\\f"),
                        '\u{b}' => line.push_str("\\v"),
                        c if c == options.delimiter => {
                            line.push('\\');
                            line.push(c);
                        }
                        c => line.push(c),
                    }
                }
            }
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::CopyFormat;
    use datafusion::arrow::array::Array;

    /// CSV rows with quoted newlines, doubled quotes and quotes inside
    /// unquoted fields, and the line each row starts on.
    fn tricky_csv(rows: usize) -> (String, Vec<usize>) {
        let mut data = String::new();
        let mut lines = Vec::new();
        let mut line = 1;
        for i in 0..rows {
            lines.push(line);
            let text = match i % 10 {
                0 => "\"two\nlines, \"\"quoted\"\"\"".to_string(),
                3 => "5'6\" tall".to_string(),
                6 => "\"\"".to_string(),
                _ => format!("plain {i}"),
            };
            line += 1 + text.matches('\n').count();
            data.push_str(&format!("{i},{text}\n"));
        }
        (data, lines)
    }

    fn chunked_copy(format: CopyFormat) -> CopyInProgress {
        use datafusion::arrow::datatypes::Schema;
        let columns = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
        ]));
        CopyInProgress::new(CopyIn::for_test(columns, options(format)))
    }

    #[test]
    fn data_parsed_in_chunks_gives_every_row_in_order() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Int64Type;
        let (data, _) = tricky_csv(20_000);
        assert!(data.len() > 4 * CHUNK_BYTES);
        let mut copy = chunked_copy(CopyFormat::Csv);
        for piece in data.as_bytes().chunks(7_000) {
            copy.push(piece).unwrap();
        }
        assert!(!copy.parsed.is_empty() || !copy.parsing.is_empty());
        let batches = copy.finish().unwrap().into_batches().unwrap();
        assert!(batches.len() > 4);
        let mut next = 0;
        for batch in &batches {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let texts = batch.column(1).as_string::<i32>();
            for r in 0..batch.num_rows() {
                assert_eq!(ids.value(r), next);
                let expected = match next % 10 {
                    0 => "two\nlines, \"quoted\"".to_string(),
                    3 => "5'6\" tall".to_string(),
                    6 => "".to_string(),
                    _ => format!("plain {next}"),
                };
                assert_eq!(texts.value(r), expected);
                next += 1;
            }
        }
        assert_eq!(next, 20_000);
    }

    #[test]
    fn a_whole_file_pushed_at_once_is_parsed_in_chunks() {
        let (data, _) = tricky_csv(20_000);
        let mut copy = chunked_copy(CopyFormat::Csv);
        copy.push(data.as_bytes()).unwrap();
        let batches = copy.finish().unwrap().into_batches().unwrap();
        assert!(batches.len() > 4);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 20_000);
    }

    #[test]
    fn a_bad_row_in_a_late_chunk_names_its_line() {
        let (mut data, lines) = tricky_csv(20_000);
        // Row 15000 gets a third field.
        let at = data.find("15000,").unwrap();
        data.insert_str(at + 6, "x,");
        let mut copy = chunked_copy(CopyFormat::Csv);
        let mut failed = None;
        for piece in data.as_bytes().chunks(7_000) {
            if let Err(e) = copy.push(piece) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => copy.finish().err().unwrap(),
        };
        let message = format!("{e:?}");
        assert!(
            message.contains(&format!("line {}", lines[15_000])),
            "{message}"
        );
    }

    #[test]
    fn text_data_stops_at_the_end_marker_in_any_chunk() {
        let mut data = String::new();
        for i in 0..20_000 {
            data.push_str(&format!("{i}\trow {i}\n"));
        }
        data.push_str("\\.\n");
        for i in 0..20_000 {
            data.push_str(&format!("{i}\tafter the end\n"));
        }
        let mut copy = chunked_copy(CopyFormat::Text);
        for piece in data.as_bytes().chunks(10_000) {
            copy.push(piece).unwrap();
        }
        let rows: usize = copy.finish().unwrap().rows();
        assert_eq!(rows, 20_000);
    }

    fn options(format: CopyFormat) -> CopyOptions {
        CopyOptions::new(format)
    }

    fn names(n: usize) -> Vec<FieldRef> {
        (0..n)
            .map(|i| Arc::new(Field::new(format!("c{i}"), DataType::Utf8, true)))
            .collect()
    }

    /// The fields as rows of strings.
    fn rows(mut fields: Fields) -> Vec<Vec<Option<String>>> {
        let columns: Vec<_> = fields.columns.iter_mut().map(|c| c.texts()).collect();
        (0..fields.lines.len())
            .map(|row| {
                columns
                    .iter()
                    .map(|c| c.is_valid(row).then(|| c.value(row).to_string()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn text_rows_unescape_and_stop_at_end_marker() {
        let columns = names(2);
        let fields = split_text(
            "1\ta\\tb\n2\t\\N\n\\.\nignored\n",
            &options(CopyFormat::Text),
            &columns,
            1,
            true,
        )
        .ok()
        .unwrap();
        assert_eq!(fields.lines, vec![1, 2]);
        let rows = rows(fields);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1].as_deref(), Some("a\tb"));
        assert_eq!(rows[1][1], None);
    }

    #[test]
    fn csv_quotes_hold_delimiters_newlines_and_quotes() {
        let columns = names(2);
        let fields = split_csv(
            "1,\"a,b\"\n2,\"line\nbreak\"\n3,\"say \"\"hi\"\"\"\n4,\n5,\"\"\r\n6,x\"y\n",
            &options(CopyFormat::Csv),
            &columns,
            1,
            true,
        )
        .ok()
        .unwrap();
        assert_eq!(fields.lines, vec![1, 2, 4, 5, 6, 7]);
        let rows = rows(fields);
        assert_eq!(rows[0][1].as_deref(), Some("a,b"));
        assert_eq!(rows[1][1].as_deref(), Some("line\nbreak"));
        assert_eq!(rows[2][1].as_deref(), Some("say \"hi\""));
        assert_eq!(rows[3][1], None);
        assert_eq!(rows[4][1].as_deref(), Some(""));
        assert_eq!(rows[5][1].as_deref(), Some("x\"y"));
    }

    #[test]
    fn csv_rows_with_too_few_or_too_many_fields_name_their_line() {
        let options = options(CopyFormat::Csv);
        let short = split_csv("1,a\n2\n", &options, &names(2), 1, true)
            .err()
            .unwrap();
        assert_eq!(
            (short.line, short.message.as_str()),
            (2, "missing data for column \"c1\"")
        );
        let long = split_csv("1,a,b\n", &options, &names(2), 1, true)
            .err()
            .unwrap();
        assert_eq!(long.message, "extra data after last expected column");
        let open = split_csv("1,\"a\n", &options, &names(2), 1, true)
            .err()
            .unwrap();
        assert_eq!(open.message, "unterminated CSV quoted field");
    }

    #[test]
    fn csv_output_quotes_what_needs_it() {
        let line = format_row(
            &[Some("a,b".into()), None, Some("".into()), Some("x".into())],
            &options(CopyFormat::Csv),
        );
        assert_eq!(line, "\"a,b\",,\"\",x\n");
    }

    #[test]
    fn binary_numeric_reads_as_decimal_text() {
        // 12345.67: ndigits 3, weight 1, sign +, dscale 2, digits 1 2345 6700
        let bytes = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c];
        assert_eq!(numeric_text(&bytes).as_deref(), Some("12345.67"));
    }
}
