//! Parser errors worded as PostgreSQL words them, with the position in the
//! query text: `syntax error at or near "x"`, `syntax error at end of
//! input`, `unterminated quoted string at or near "'abc"`. Tools classify
//! errors by these words (Superset's SYNTAX_ERROR), and psql points at the
//! position.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

use crate::error::QuiverError;

/// The error for `error`, raised while parsing `sql` (the whole text the
/// client sent, which the parser's lines and columns refer to).
pub fn from_parser(sql: &str, error: ParserError) -> QuiverError {
    let message = match &error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => return error.into(),
    };
    let (text, position) = match split_location(&message) {
        Some((text, line, column)) => (text, position_of(sql, line, column)),
        None => (message.as_str(), None),
    };
    if let Some(found) = text.split_once("found: ").map(|(_, found)| found) {
        if found == "EOF" {
            return QuiverError::SyntaxAt {
                message: "syntax error at end of input".into(),
                position: sql.trim_end().chars().count() + 1,
            };
        }
        if let Some(position) = position {
            return QuiverError::SyntaxAt {
                message: format!("syntax error at or near \"{found}\""),
                position,
            };
        }
    }
    match position {
        Some(position) if text.starts_with("Unterminated string literal") => {
            let rest: String = sql.chars().skip(position - 1).collect();
            QuiverError::SyntaxAt {
                message: format!("unterminated quoted string at or near \"{rest}\""),
                position,
            }
        }
        Some(position) => QuiverError::SyntaxAt {
            message: format!("syntax error: {text}"),
            position,
        },
        None => error.into(),
    }
}

/// [`from_parser`] for the parser's errors that reach us wrapped by
/// DataFusion; any other error as it was.
pub fn from_datafusion(sql: &str, error: DataFusionError) -> QuiverError {
    // DataFusion may wrap the parser's error (in a diagnostic, say).
    if let DataFusionError::SQL(parser, _) = error.find_root() {
        return from_parser(sql, parser.as_ref().clone());
    }
    error.into()
}

/// `message` without its trailing ` at Line: L, Column: C`, and L and C.
fn split_location(message: &str) -> Option<(&str, usize, usize)> {
    let (text, location) = message.rsplit_once(" at Line: ")?;
    let (line, column) = location.split_once(", Column: ")?;
    Some((text, line.trim().parse().ok()?, column.trim().parse().ok()?))
}

/// The 1-based character position of line `line`, column `column`.
fn position_of(sql: &str, line: usize, column: usize) -> Option<usize> {
    let mut position = 0;
    for (n, text) in sql.split('\n').enumerate() {
        if n + 1 == line {
            return Some(position + column);
        }
        position += text.chars().count() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    fn error(sql: &str) -> (String, Option<usize>) {
        let e = crate::sql::parse_statements(sql).unwrap_err();
        (e.to_string(), e.position())
    }

    #[test]
    fn messages_and_positions_follow_postgresql() {
        assert_eq!(
            error("SELEC 1"),
            ("syntax error at or near \"SELEC\"".into(), Some(1))
        );
        assert_eq!(
            error("SELECT 1 +"),
            ("syntax error at end of input".into(), Some(11))
        );
        assert_eq!(
            error("CREATE TABLE (x int)"),
            ("syntax error at or near \"(\"".into(), Some(14))
        );
        assert_eq!(
            error("SELECT 1;\nSELEC 2"),
            ("syntax error at or near \"SELEC\"".into(), Some(11))
        );
        assert_eq!(
            error("SELECT 'abc"),
            (
                "unterminated quoted string at or near \"'abc\"".into(),
                Some(8)
            )
        );
        assert_eq!(
            error("SELECT 1 2 3"),
            ("syntax error at or near \"2\"".into(), Some(10))
        );
        // Characters, not bytes.
        assert_eq!(
            error("SELECT 'é' 2"),
            ("syntax error at or near \"2\"".into(), Some(12))
        );
    }
}
