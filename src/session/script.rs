//! Splitting SQL text into statements: DataFusion's parser for everything
//! it knows, and CHECKPOINT and COPY, which it does not (or not as
//! Postgres has them).

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use super::Session;
use crate::error::Result;

/// A statement of a script: one DataFusion parses, or CHECKPOINT, which
/// its parser does not know.
#[derive(Clone)]
pub(super) enum Parsed {
    Checkpoint,
    Statement(DfStatement),
}

/// Parses every statement of `sql` before any runs, as Postgres does.
pub(super) fn parse_script(sql: &str) -> Result<Vec<Parsed>> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("checkpoint") && !lower.contains("copy") {
        return Ok(Session::parse(sql)?
            .into_iter()
            .map(Parsed::Statement)
            .collect());
    }
    let mut parsed = Vec::new();
    for piece in split_statements(sql)? {
        if is_checkpoint(&piece) {
            parsed.push(Parsed::Checkpoint);
        } else if super::copy::is_copy(&piece) {
            parsed.push(Parsed::Statement(super::copy::parse_copy(&piece)?));
        } else {
            parsed.extend(Session::parse(&piece)?.into_iter().map(Parsed::Statement));
        }
    }
    Ok(parsed)
}

/// Splits SQL text at the semicolons between statements (not those in
/// strings or comments).
fn split_statements(sql: &str) -> Result<Vec<String>> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize()?;
    let mut pieces = vec![String::new()];
    for token in tokens {
        if token == Token::SemiColon {
            pieces.push(String::new());
        } else {
            pieces
                .last_mut()
                .expect("one piece")
                .push_str(&token.to_string());
        }
    }
    Ok(pieces
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect())
}

pub(super) fn is_checkpoint(sql: &str) -> bool {
    sql.trim()
        .trim_end_matches(';')
        .trim()
        .eq_ignore_ascii_case("checkpoint")
}
