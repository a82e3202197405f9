//! JSON as PostgreSQL reads and writes it. One parser serves `json` and
//! `jsonb` input; `jsonb` values are kept in their one canonical text
//! (object keys ordered by length and then bytes, the last of repeated
//! keys kept, `", "` and `": "` between items, numbers as `numeric`
//! prints them), so two equal `jsonb` values are equal strings. `json`
//! keeps the text it was given, and its operators return pieces of it.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::error::{QuiverError, Result};

/// Nesting deeper than this is refused (54001) rather than recursed into
/// (a debug build spends about 2 KiB of stack a level; an embedding
/// program's threads may have only 2 MiB).
pub const MAX_DEPTH: usize = 400;

/// A parsed JSON value. Strings and numbers borrow from the text they
/// were parsed from where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// The number's text: as written for `json`, as `numeric` prints it
    /// for `jsonb` (`1e3` is `1000`, `-0` is `0`).
    Number(Cow<'a, str>),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in input order for `json`, in `jsonb`'s key order (see
    /// [`key_order`]) without repeats for `jsonb`.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// `jsonb`'s order of object keys: shorter first, then bytewise.
pub fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Checks `text` as `json` input: the text itself is what is stored.
pub fn check_json(text: &str) -> Result<()> {
    parse(text, false).map(|_| ())
}

/// `text` as `jsonb` input, in its canonical text.
pub fn jsonb_text(text: &str) -> Result<String> {
    Ok(parse(text, true)?.to_jsonb_text())
}

/// Parses `text`; `jsonb` orders and deduplicates object keys, normalises
/// numbers and refuses `\u0000`, as PostgreSQL's `jsonb` input does.
pub fn parse(text: &str, jsonb: bool) -> Result<Json<'_>> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        jsonb,
    };
    parser.whitespace();
    let value = parser.value(0)?;
    parser.whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.invalid());
    }
    Ok(value)
}

/// The top-level pieces of a `json` text, as written: an object's members
/// (key decoded, value's text) or an array's elements.
pub enum Pieces<'a> {
    Object(Vec<(Cow<'a, str>, &'a str)>),
    Array(Vec<&'a str>),
    Scalar,
}

/// Splits a `json` text into its top-level pieces.
pub fn pieces(text: &str) -> Result<Pieces<'_>> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        jsonb: false,
    };
    p.whitespace();
    let pieces = match p.peek() {
        Some(b'{') => {
            p.pos += 1;
            let mut members = Vec::new();
            p.items(b'}', |p| {
                let key = p.key()?;
                let start = p.pos;
                p.value(1)?;
                members.push((key, &text[start..p.pos]));
                Ok(())
            })?;
            Pieces::Object(members)
        }
        Some(b'[') => {
            p.pos += 1;
            let mut elements = Vec::new();
            p.items(b']', |p| {
                let start = p.pos;
                p.value(1)?;
                elements.push(&text[start..p.pos]);
                Ok(())
            })?;
            Pieces::Array(elements)
        }
        _ => {
            p.value(0)?;
            Pieces::Scalar
        }
    };
    p.whitespace();
    if p.pos != p.bytes.len() {
        return Err(p.invalid());
    }
    Ok(pieces)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    jsonb: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn invalid(&self) -> QuiverError {
        QuiverError::InvalidTextRepresentation {
            type_name: "json".into(),
            value: shortened(self.text),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>> {
        if depth > MAX_DEPTH {
            return Err(QuiverError::StatementTooComplex(format!(
                "stack depth limit exceeded: JSON nested deeper than {MAX_DEPTH} levels"
            )));
        }
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.items(b'}', |p| {
                    let key = p.key()?;
                    members.push((key, p.value(depth + 1)?));
                    Ok(())
                })?;
                if self.jsonb {
                    members = canonical_members(members);
                }
                Ok(Json::Object(members))
            }
            Some(b'[') => {
                self.pos += 1;
                let mut elements = Vec::new();
                self.items(b']', |p| {
                    elements.push(p.value(depth + 1)?);
                    Ok(())
                })?;
                Ok(Json::Array(elements))
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => {
                for (word, value) in [
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                    ("null", Json::Null),
                ] {
                    if self.bytes[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                Err(self.invalid())
            }
        }
    }

    /// The items of an object or array after its opening bracket, each
    /// read by `item` (which starts at the item), up to `close`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.whitespace();
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.invalid()),
            }
        }
    }

    /// An object key and its colon; leaves the position at the value.
    fn key(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return Err(self.invalid());
        }
        let key = self.string()?;
        self.whitespace();
        if self.peek() != Some(b':') {
            return Err(self.invalid());
        }
        self.pos += 1;
        self.whitespace();
        Ok(key)
    }

    fn string(&mut self) -> Result<Cow<'a, str>> {
        self.pos += 1; // the opening quote
        let start = self.pos;
        // The common case: no escapes, borrowed.
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
                }
                b'\\' => break,
                0..=0x1f => return Err(self.invalid()),
                _ => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            let run = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or_else(|| self.invalid())?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.invalid()),
                    }
                }
                _ => return Err(self.invalid()),
            }
        }
    }

    /// `\uXXXX` (after the `u`), a surrogate pair as one character.
    fn unicode_escape(&mut self) -> Result<char> {
        let high = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&high) {
            if !self.bytes[self.pos..].starts_with(b"\\u") {
                return Err(self.invalid());
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.invalid());
            }
            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
        } else if (0xdc00..0xe000).contains(&high) {
            return Err(self.invalid());
        } else {
            high
        };
        if code == 0 && self.jsonb {
            return Err(QuiverError::UntranslatableCharacter(
                "unsupported Unicode escape sequence: \\u0000 cannot be converted to text".into(),
            ));
        }
        char::from_u32(code).ok_or_else(|| self.invalid())
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.invalid())?;
        self.pos += 4;
        Ok(u32::from_str_radix(digits, 16).expect("four hex digits"))
    }

    /// A number as JSON writes one: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<Json<'a>> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while matches!(p.peek(), Some(b'0'..=b'9')) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let whole = digits(self);
        if whole == 0 || (leading_zero && whole > 1) {
            return Err(self.invalid());
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.invalid());
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.invalid());
            }
        }
        let text = &self.text[start..self.pos];
        Ok(Json::Number(if self.jsonb {
            numeric_text(text)?
        } else {
            Cow::Borrowed(text)
        }))
    }
}

/// At most 60 characters of `text`, for an error message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// Members in `jsonb`'s key order, the last of repeated keys kept.
fn canonical_members<'a>(
    mut members: Vec<(Cow<'a, str>, Json<'a>)>,
) -> Vec<(Cow<'a, str>, Json<'a>)> {
    // Stable: repeated keys stay in input order, the last one wins.
    members.sort_by(|a, b| key_order(&a.0, &b.0));
    let mut kept: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(members.len());
    for member in members {
        if kept.last().is_some_and(|last| last.0 == member.0) {
            kept.pop();
        }
        kept.push(member);
    }
    kept
}

/// PostgreSQL's `numeric` bounds: digits before and after the point.
const NUMERIC_MAX_WHOLE: i64 = 131_072;
const NUMERIC_MAX_SCALE: i64 = 16_383;

/// A valid JSON number as `numeric` prints it: no exponent, as many
/// decimals as the input has after its exponent is applied (`1.50` stays,
/// `1.5e-3` is `0.0015`, `1e3` is `1000`), no negative zero.
pub fn numeric_text(text: &str) -> Result<Cow<'_, str>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let zero = mantissa.bytes().all(|b| b == b'0' || b == b'.');
    let Some(exponent) = exponent else {
        return Ok(if negative && zero {
            Cow::Borrowed(unsigned)
        } else {
            Cow::Borrowed(text)
        });
    };
    let overflow = || QuiverError::OutOfRange("value overflows numeric format".into());
    let exponent: i64 = exponent
        .trim_start_matches('+')
        .parse()
        .map_err(|_| overflow())?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = [whole, fraction].concat();
    // The decimal point sits before digit `point` of `digits`.
    let point = whole.len() as i64 + exponent;
    let scale = (fraction.len() as i64 - exponent).max(0);
    if point > NUMERIC_MAX_WHOLE || scale > NUMERIC_MAX_SCALE {
        return Err(overflow());
    }
    let n = digits.len() as i64;
    let mut out = String::new();
    if negative && !zero {
        out.push('-');
    }
    let whole_digits: String = if point <= 0 {
        String::new()
    } else if point >= n {
        format!("{digits}{}", "0".repeat((point - n) as usize))
    } else {
        digits[..point as usize].to_string()
    };
    let whole_digits = whole_digits.trim_start_matches('0');
    out.push_str(if whole_digits.is_empty() {
        "0"
    } else {
        whole_digits
    });
    if scale > 0 {
        out.push('.');
        if point < 0 {
            out.push_str(&"0".repeat((-point) as usize));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[point as usize..]);
        }
    }
    Ok(Cow::Owned(out))
}

/// A string as PostgreSQL's `escape_json` writes it, quotes included.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut run = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push_str(escaped);
        }
        run = i + c.len_utf8();
    }
    out.push_str(&s[run..]);
    out.push('"');
}

impl<'a> Json<'a> {
    /// The canonical `jsonb` text of this value (its objects must already
    /// be in `jsonb`'s key order, as [`parse`] and [`Json::object`] leave
    /// them).
    pub fn to_jsonb_text(&self) -> String {
        let mut out = String::new();
        self.write_jsonb(&mut out);
        out
    }

    pub fn write_jsonb(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_jsonb(out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(out, key);
                    out.push_str(": ");
                    value.write_jsonb(out);
                }
                out.push('}');
            }
        }
    }

    /// `jsonb_pretty`'s layout: four spaces per level, one item a line.
    pub fn write_pretty(&self, out: &mut String, level: usize) {
        let indent = |out: &mut String, level: usize| {
            out.push('\n');
            out.push_str(&"    ".repeat(level));
        };
        match self {
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, level + 1);
                    item.write_pretty(out, level + 1);
                }
                indent(out, level);
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, level + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write_pretty(out, level + 1);
                }
                indent(out, level);
                out.push('}');
            }
            other => other.write_jsonb(out),
        }
    }

    /// An object from members in any order: `jsonb`'s key order, the
    /// last of repeated keys kept.
    pub fn object(members: Vec<(Cow<'a, str>, Json<'a>)>) -> Json<'a> {
        Json::Object(canonical_members(members))
    }

    /// `jsonb_typeof`'s names.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    /// The member `key` of an object.
    pub fn member(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members
                .binary_search_by(|(k, _)| key_order(k, key))
                .ok()
                .map(|i| &members[i].1),
            _ => None,
        }
    }

    /// Element `index` of an array; a negative index counts from the end.
    pub fn element(&self, index: i64) -> Option<&Json<'a>> {
        match self {
            Json::Array(items) => array_position(items.len(), index).map(|i| &items[i]),
            _ => None,
        }
    }

    /// The value at `path`: object keys, or array positions written as
    /// integers (`#>`, `jsonb_extract_path`).
    pub fn at_path<S: AsRef<str>>(&self, path: &[S]) -> Option<&Json<'a>> {
        path.iter().try_fold(self, |value, step| {
            let step = step.as_ref();
            match value {
                Json::Object(_) => value.member(step),
                Json::Array(_) => value.element(step.trim().parse().ok()?),
                _ => None,
            }
        })
    }

    /// `->>`'s text: a string's contents, any other value's JSON text,
    /// SQL NULL for a JSON null.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.to_string()),
            other => Some(other.to_jsonb_text()),
        }
    }

    /// `@>`: whether `self` contains `other`, as PostgreSQL defines it
    /// (objects by their members, arrays by their elements in any order;
    /// a top-level array contains a scalar it has as an element).
    pub fn contains(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Array(items), Json::Array(wanted)) => wanted
                .iter()
                .all(|w| items.iter().any(|i| i.contains_nested(w))),
            (Json::Array(items), scalar) if !matches!(scalar, Json::Object(_)) => {
                items.iter().any(|i| i.equals(scalar))
            }
            _ => self.contains_nested(other),
        }
    }

    /// Containment below the top level, where an array contains only
    /// arrays.
    fn contains_nested(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(_), Json::Object(wanted)) => wanted
                .iter()
                .all(|(k, w)| self.member(k).is_some_and(|v| v.contains_nested(w))),
            (Json::Array(items), Json::Array(wanted)) => wanted.iter().all(|w| {
                items.iter().any(|i| {
                    if matches!(w, Json::Array(_) | Json::Object(_)) {
                        i.contains_nested(w)
                    } else {
                        i.equals(w)
                    }
                })
            }),
            (a, b) => a.equals(b),
        }
    }

    /// Equality of JSON values; numbers by value (`1.0` equals `1`).
    pub fn equals(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Number(a), Json::Number(b)) => numbers_equal(a, b),
            (Json::Array(a), Json::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equals(y))
            }
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.equals(vb))
            }
            (a, b) => a == b,
        }
    }

    /// Whether `key` is a top-level key, or a string element of a
    /// top-level array (`?`).
    pub fn has_key(&self, key: &str) -> bool {
        match self {
            Json::Object(_) => self.member(key).is_some(),
            Json::Array(items) => items
                .iter()
                .any(|i| matches!(i, Json::String(s) if s == key)),
            Json::String(s) => s == key,
            _ => false,
        }
    }

    /// Drops object members whose value is null, at every level.
    pub fn strip_nulls(self) -> Json<'a> {
        match self {
            Json::Object(members) => Json::Object(
                members
                    .into_iter()
                    .filter(|(_, v)| *v != Json::Null)
                    .map(|(k, v)| (k, v.strip_nulls()))
                    .collect(),
            ),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::strip_nulls).collect()),
            other => other,
        }
    }

    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(Cow::Owned(n.into_owned())),
            Json::String(s) => Json::String(Cow::Owned(s.into_owned())),
            Json::Array(items) => Json::Array(items.into_iter().map(Json::into_owned).collect()),
            Json::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }
}

/// The position in an array of `len` elements that `index` names (a
/// negative index counts from the end).
pub fn array_position(len: usize, index: i64) -> Option<usize> {
    let len = len as i64;
    let at = if index < 0 { len + index } else { index };
    (0..len).contains(&at).then_some(at as usize)
}

/// Two numeric texts (as `jsonb` keeps them) by value: trailing zeros
/// after the point do not count.
fn numbers_equal(a: &str, b: &str) -> bool {
    fn trimmed(n: &str) -> &str {
        if n.contains('.') {
            n.trim_end_matches('0').trim_end_matches('.')
        } else {
            n
        }
    }
    trimmed(a) == trimmed(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        jsonb_text(text).unwrap()
    }

    #[test]
    fn jsonb_text_is_postgres_canonical_form() {
        assert_eq!(
            canonical(
                r#"{"bb":1,"a":2, "c": [1, 2.50, -0, 1e3, 1E-2, true, null, "x\ny\u00e9\u0001"]}"#
            ),
            r#"{"a": 2, "c": [1, 2.50, 0, 1000, 0.01, true, null, "x\nyé\u0001"], "bb": 1}"#
        );
        assert_eq!(canonical(r#"{"a":1,"a":2}"#), r#"{"a": 2}"#);
        assert_eq!(canonical(" [1 , 2] "), "[1, 2]");
        assert_eq!(canonical("{}"), "{}");
        assert_eq!(canonical(r#""\ud83d\ude00/""#), "\"😀/\"");
    }

    #[test]
    fn numbers_print_as_numeric() {
        for (input, printed) in [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("1.5e-3", "0.0015"),
            ("1.50e1", "15.0"),
            ("12e-1", "1.2"),
            ("-12.5E+2", "-1250"),
            ("0e5", "0"),
            ("5e-1", "0.5"),
        ] {
            assert_eq!(numeric_text(input).unwrap(), printed, "{input}");
        }
        assert!(numeric_text("1e200000").is_err());
    }

    #[test]
    fn refuses_what_postgres_refuses() {
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "-",
            "[1,]",
            "{\"a\"}",
            "{a:1}",
            "tru",
            "[1] x",
            "\"\t\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "1e",
            "'a'",
        ] {
            assert!(parse(bad, true).is_err(), "{bad:?}");
        }
        assert!(parse(r#""\u0000""#, false).is_ok());
        assert!(matches!(
            parse(r#""\u0000""#, true),
            Err(QuiverError::UntranslatableCharacter(_))
        ));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        assert!(matches!(
            parse(&deep, true),
            Err(QuiverError::StatementTooComplex(_))
        ));
    }

    #[test]
    fn containment_and_lookup() {
        let j = |t| parse(t, true).unwrap();
        assert!(j(r#"{"a":[1,2],"b":1}"#).contains(&j(r#"{"a":[2]}"#)));
        assert!(j("[1,2]").contains(&j("1")));
        assert!(!j("[[1,2]]").contains(&j("[1]")));
        assert!(j("[[1,2]]").contains(&j("[[1]]")));
        assert!(j("1.0").equals(&j("1")));
        assert!(!j(r#"{"a":1}"#).contains(&j(r#"{"a":1,"b":null}"#)));
        let v = j(r#"{"a":{"b":[10,20]}}"#);
        assert_eq!(
            v.at_path(&["a", "b", "-1"]),
            Some(&Json::Number("20".into()))
        );
        assert_eq!(v.at_path(&["a", "x"]), None);
        assert!(j(r#"["a","b"]"#).has_key("b"));
    }

    #[test]
    fn json_pieces_keep_their_text() {
        let Pieces::Object(members) = pieces(r#"{"a": {"b":1} , "c" : [1, 2]}"#).unwrap() else {
            panic!("an object");
        };
        assert_eq!(members[0], (Cow::Borrowed("a"), r#"{"b":1}"#));
        assert_eq!(members[1], (Cow::Borrowed("c"), "[1, 2]"));
    }

    #[test]
    fn pretty_layout() {
        let mut out = String::new();
        parse(r#"{"a":[1,{"b":2}],"c":{}}"#, true)
            .unwrap()
            .write_pretty(&mut out, 0);
        assert_eq!(
            out,
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": 2\n        }\n    ],\n    \"c\": {\n    }\n}"
        );
    }
}
