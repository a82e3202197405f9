//! `?` placeholders, as JDBC, ODBC and ADBC write parameters, turned into
//! PostgreSQL's `$1, $2, ...`. Our SQL dialect reads a bare `?` as the
//! jsonb operator, so the rewrite happens on the text, token-aware: a `?`
//! inside a string, a quoted identifier, a dollar-quoted body or a comment
//! stays as it is.

use std::borrow::Cow;

/// `sql` with every `?` placeholder numbered `$1, $2, ...` in order. Text
/// that already numbers its parameters (`$1`) is left alone: it speaks
/// PostgreSQL, where `?` is an operator.
pub fn number_question_marks(sql: &str) -> Cow<'_, str> {
    let marks = question_marks(sql);
    if marks.is_empty() || has_numbered_parameters(sql) {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + marks.len() * 2);
    let mut last = 0;
    for (n, at) in marks.iter().enumerate() {
        out.push_str(&sql[last..*at]);
        out.push('$');
        out.push_str(&(n + 1).to_string());
        last = at + 1;
    }
    out.push_str(&sql[last..]);
    Cow::Owned(out)
}

/// Byte offsets of the `?` outside strings, identifiers and comments.
fn question_marks(sql: &str) -> Vec<usize> {
    let mut marks = Vec::new();
    scan(sql, |at, byte| {
        if byte == b'?' {
            marks.push(at);
        }
    });
    marks
}

fn has_numbered_parameters(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let mut found = false;
    scan(sql, |at, byte| {
        found |= byte == b'$' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit);
    });
    found
}

/// Calls `visit` with each byte of `sql` that is plain SQL (not inside a
/// string literal, quoted identifier, dollar-quoted body or comment).
fn scan(sql: &str, mut visit: impl FnMut(usize, u8)) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                // E'...' strings take backslash escapes.
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'e' | b'E') && !word_before(bytes, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' if !word_before(bytes, i) => match dollar_tag(bytes, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    i = find(&bytes[body..], tag).map_or(bytes.len(), |n| body + n + tag.len());
                }
                None => {
                    visit(i, b'$');
                    i += 1;
                }
            },
            byte => {
                visit(i, byte);
                i += 1;
            }
        }
    }
}

/// Whether the byte before `at` continues an identifier (so `e'` is not
/// an escape string and `a$b` no dollar quote).
fn word_before(bytes: &[u8], at: usize) -> bool {
    at > 0
        && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] >= 0x80)
}

/// The index after the quoted text starting at `start`; a doubled quote
/// is one quote character.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The index after the (nested) block comment starting at `start`.
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$` or `$$` starting at `start`, when it is one.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let rest = &bytes[start + 1..];
    let len = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80))?;
    let tag_is_word = rest.first().is_none_or(|b| !b.is_ascii_digit());
    (rest[len] == b'$' && tag_is_word).then(|| &bytes[start..start + len + 2])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::number_question_marks as n;

    #[test]
    fn question_marks_are_numbered_in_order() {
        assert_eq!(
            n("SELECT * FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(
            n("INSERT INTO t VALUES (?,?)"),
            "INSERT INTO t VALUES ($1,$2)"
        );
    }

    #[test]
    fn quoted_text_and_comments_keep_their_question_marks() {
        assert_eq!(
            n("SELECT '?', \"a?\", $$?$$, $q$ ? $q$, E'\\'?' -- ?\n, ? /* ? /* ? */ */"),
            "SELECT '?', \"a?\", $$?$$, $q$ ? $q$, E'\\'?' -- ?\n, $1 /* ? /* ? */ */"
        );
        assert_eq!(n("SELECT 'it''s ?', ?"), "SELECT 'it''s ?', $1");
    }

    #[test]
    fn text_with_numbered_parameters_or_no_marks_is_unchanged() {
        assert_eq!(n("SELECT $1::jsonb ? 'a'"), "SELECT $1::jsonb ? 'a'");
        assert_eq!(n("SELECT 1"), "SELECT 1");
        assert!(matches!(n("SELECT 1"), std::borrow::Cow::Borrowed(_)));
    }
}
