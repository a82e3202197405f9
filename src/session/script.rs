//! Splitting SQL text into statements: DataFusion's parser for everything
//! it knows, and CHECKPOINT and COPY, which it does not (or not as
//! Postgres has them).

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use super::Session;
use crate::error::{QuiverError, Result};
use crate::sql::sequence_ddl::{self, SequenceStatement};

/// A statement of a script: one DataFusion parses, or one its parser
/// does not know (CHECKPOINT) or knows otherwise than PostgreSQL (CREATE
/// and ALTER SEQUENCE).
#[derive(Clone)]
pub(super) enum Parsed {
    Checkpoint,
    /// SET CONSTRAINTS: the names (None for ALL), and whether DEFERRED.
    SetConstraints(Option<Vec<String>>, bool),
    /// MOVE: the FETCH whose rows it skips.
    Move(DfStatement),
    Sequence(SequenceStatement),
    /// A statement, with INSERT's OVERRIDING clause if it had one.
    Statement(DfStatement, Option<Overriding>),
}

/// INSERT's `OVERRIDING { SYSTEM | USER } VALUE`, which the SQL parser
/// does not know: SYSTEM lets values be given for GENERATED ALWAYS
/// identity columns, USER ignores those given for any identity column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overriding {
    System,
    User,
}

/// Parses every statement of `sql` before any runs, as Postgres does.
pub(super) fn parse_script(sql: &str) -> Result<Vec<Parsed>> {
    let lower = sql.to_ascii_lowercase();
    let ours = [
        "checkpoint",
        "copy",
        "sequence",
        "constraints",
        "move",
        "overriding",
    ]
        .iter()
        .any(|w| lower.contains(w))
        // A signed FETCH count (`FETCH -2 FROM c`).
        || lower.contains("fetch") && lower.contains('-');
    if !ours {
        return Ok(Session::parse(sql)?
            .into_iter()
            .map(|s| Parsed::Statement(s, None))
            .collect());
    }
    let mut parsed = Vec::new();
    for piece in split_statements(sql)? {
        if is_checkpoint(&piece) {
            parsed.push(Parsed::Checkpoint);
        } else if let Some(motion) = parse_cursor_motion(&piece) {
            parsed.push(match motion? {
                (statement, true) => Parsed::Move(statement),
                (statement, false) => Parsed::Statement(statement, None),
            });
        } else if let Some(set) = super::foreign_keys::parse_set_constraints(&piece) {
            let (names, deferred) = set?;
            parsed.push(Parsed::SetConstraints(names, deferred));
        } else if sequence_ddl::is_sequence_statement(&piece) {
            parsed.push(Parsed::Sequence(
                sequence_ddl::parse(&piece).map_err(without_position)?,
            ));
        } else if crate::sql::copy_options::is_copy(&piece) {
            let copy = crate::sql::copy_options::parse_copy(&piece).map_err(without_position)?;
            parsed.push(Parsed::Statement(copy, None));
        } else if let Some((insert, overriding)) = strip_overriding(&piece) {
            let statements = Session::parse(&insert).map_err(without_position)?;
            parsed.extend(
                statements
                    .into_iter()
                    .map(|s| Parsed::Statement(s, Some(overriding))),
            );
        } else {
            let statements = Session::parse(&piece).map_err(without_position)?;
            parsed.extend(statements.into_iter().map(|s| Parsed::Statement(s, None)));
        }
    }
    Ok(parsed)
}

/// A syntax error found in text that is not what the client sent (a piece
/// of its script, or its text rewritten): the position would point at the
/// wrong place, so the error goes without it.
pub(super) fn without_position(e: QuiverError) -> QuiverError {
    match e {
        QuiverError::SyntaxAt { message, .. } => QuiverError::InvalidStatement(message),
        other => other,
    }
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

/// The most operators one expression may chain at one nesting level. A
/// chain like `1+1+...+1` parses into a tree as deep as it is long; every
/// later pass over the tree recurses, and DataFusion's planning of it takes
/// time quadratic in its depth. Beyond this the statement is refused
/// (54001) instead of risking the server's stack or a core for minutes.
pub(super) const MAX_OPERATOR_CHAIN: usize = 2_000;

/// The most function calls one inside another (`abs(abs(...))`). The
/// parser reads each call's arguments twice (first trying it as a type
/// with modifiers), so its time doubles with every level: 30 levels would
/// hold a core for minutes, beyond any cancel.
pub(super) const MAX_CALL_NESTING: usize = 20;

/// Checks that `sql` is not too complex to handle, and spells the
/// PostgreSQL forms the parser does not know (`CREATE USER`, `ALTER USER`,
/// `DROP USER`) as the `ROLE` forms it does.
pub(super) fn check_and_rewrite(sql: &str) -> Result<std::borrow::Cow<'_, str>> {
    if let Some(marked) = crate::sql::between_symmetric::mark(sql) {
        return Ok(std::borrow::Cow::Owned(
            check_and_rewrite(&marked)?.into_owned(),
        ));
    }
    if let Some(fetch) = fetch_next(sql) {
        return Ok(std::borrow::Cow::Owned(fetch));
    }
    if let Some(maintenance) = without_maintenance_options(sql) {
        return Ok(std::borrow::Cow::Owned(maintenance));
    }
    if let Some(logged) = without_unlogged(sql) {
        return Ok(std::borrow::Cow::Owned(logged));
    }
    // Identity column options in the order the parser reads them.
    match crate::sql::sequence_ddl::identity_options_in_order(sql)? {
        Some(reordered) => Ok(std::borrow::Cow::Owned(
            check_and_rewrite_users(&reordered)?.into_owned(),
        )),
        None => check_and_rewrite_users(sql),
    }
}

/// `VACUUM` or `ANALYZE` with the options the parser does not read
/// (`VACUUM (VERBOSE, ANALYZE) t`, `VACUUM FULL ANALYZE t`, `ANALYZE
/// VERBOSE t`) blanked out: they change nothing here; `ANALYSE` spelled
/// `ANALYZE`. None for any other statement, or one without options.
fn without_maintenance_options(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let start = sql.trim_start().get(..7)?.to_ascii_lowercase();
    if !["vacuum", "analyze", "analyse"]
        .iter()
        .any(|w| start.starts_with(w))
    {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let mut words = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)));
    let first = words.next()?;
    let command = match &first.token {
        Token::Word(w) => w.value.to_ascii_lowercase(),
        _ => return None,
    };
    if !matches!(command.as_str(), "vacuum" | "analyze" | "analyse") {
        return None;
    }
    let options = ["full", "freeze", "verbose", "analyze", "analyse"];
    let mut blank = Vec::new();
    let mut depth = 0;
    for token in words {
        let option = match &token.token {
            Token::LParen if blank.is_empty() || depth > 0 => {
                depth += 1;
                true
            }
            Token::RParen if depth > 0 => {
                depth -= 1;
                true
            }
            _ if depth > 0 => true,
            Token::Word(w) if w.quote_style.is_none() => {
                options.contains(&w.value.to_ascii_lowercase().as_str())
            }
            _ => false,
        };
        if !option {
            break;
        }
        blank.push(token.span);
    }
    let british = command == "analyse";
    if blank.is_empty() && !british {
        return None;
    }
    // Spans are 1-based lines and columns; blank each with spaces.
    let mut lines: Vec<Vec<char>> = sql.split('\n').map(|l| l.chars().collect()).collect();
    if british {
        let (line, column) = (first.span.start.line, first.span.start.column);
        let line = lines.get_mut(line as usize - 1)?;
        let at = column as usize - 1;
        line.splice(at..at + 7, "ANALYZE".chars());
    }
    for span in blank {
        if span.start.line != span.end.line {
            return None;
        }
        let line = lines.get_mut(span.start.line as usize - 1)?;
        for c in (span.start.column - 1)..(span.end.column - 1) {
            *line.get_mut(c as usize)? = ' ';
        }
    }
    Some(
        lines
            .into_iter()
            .map(|l| l.into_iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// `CREATE UNLOGGED TABLE` as a plain `CREATE TABLE` (the word blanked
/// out): every table's rows are logged, which keeps more than UNLOGGED
/// promises (PostgreSQL empties such a table after a crash).
fn without_unlogged(sql: &str) -> Option<String> {
    let create = sql.trim_start();
    if !create.get(..6)?.eq_ignore_ascii_case("create") {
        return None;
    }
    let rest = create[6..].trim_start();
    let word = rest.get(..8)?;
    let after = rest[8..].chars().next()?;
    if !word.eq_ignore_ascii_case("unlogged") || !after.is_whitespace() {
        return None;
    }
    let at = sql.len() - rest.len();
    let mut out = sql.to_string();
    out.replace_range(at..at + 8, "        ");
    Some(out)
}

/// `MOVE [direction] [FROM | IN] c` as the FETCH that reads the rows it
/// skips.
pub(super) fn move_as_fetch(sql: &str) -> Option<String> {
    let trimmed = sql.trim_start();
    let (first, rest) = trimmed.split_at(trimmed.find(char::is_whitespace)?);
    if !first.eq_ignore_ascii_case("move") {
        return None;
    }
    let fetch = format!("FETCH{rest}");
    Some(fetch_next(&fetch).unwrap_or(fetch))
}

/// An INSERT with `OVERRIDING { SYSTEM | USER } VALUE`: its text with the
/// clause blanked out (spaces, so that error positions stay right), and
/// the clause. None for any other statement.
pub(super) fn strip_overriding(sql: &str) -> Option<(String, Overriding)> {
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    if !sql.to_ascii_lowercase().contains("overriding") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let words: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let is_word = |i: usize, word: &str| {
        words.get(i).is_some_and(|t| {
            matches!(&t.token, Token::Word(w) if w.quote_style.is_none()
                && w.value.eq_ignore_ascii_case(word))
        })
    };
    if !is_word(0, "insert") {
        return None;
    }
    let mut depth = 0i32;
    for i in 0..words.len() {
        match &words[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ => {}
        }
        if depth != 0 || !is_word(i, "overriding") || !is_word(i + 2, "value") {
            continue;
        }
        let overriding = if is_word(i + 1, "system") {
            Overriding::System
        } else if is_word(i + 1, "user") {
            Overriding::User
        } else {
            continue;
        };
        let start = byte_offset(sql, words[i].span.start);
        let end = byte_offset(sql, words[i + 2].span.end);
        let blank = " ".repeat(sql[start..end].chars().count());
        return Some((
            format!("{}{blank}{}", &sql[..start], &sql[end..]),
            overriding,
        ));
    }
    None
}

/// The byte offset of a tokenizer location (1-based line and character).
fn byte_offset(sql: &str, at: datafusion::sql::sqlparser::tokenizer::Location) -> usize {
    let (mut line, mut column) = (1, 1);
    for (i, c) in sql.char_indices() {
        if line == at.line && column == at.column {
            return i;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    sql.len()
}

/// MOVE (as the FETCH that reads the rows it skips) or a FETCH with a
/// signed count: the statement, and whether it is a MOVE. None for any
/// other statement.
pub(super) fn parse_cursor_motion(sql: &str) -> Option<Result<(DfStatement, bool)>> {
    let Some(fetch) = move_as_fetch(sql) else {
        return parse_signed_fetch(sql).map(|s| s.map(|s| (s, false)));
    };
    let statement = match parse_signed_fetch(&fetch) {
        Some(statement) => statement,
        None => Session::parse(&fetch)
            .map_err(without_position)
            .and_then(|mut statements| {
                statements
                    .pop_front()
                    .ok_or_else(|| QuiverError::Syntax("MOVE needs a cursor".into()))
            }),
    };
    Some(statement.map(|s| (s, true)))
}

/// `FETCH -2 FROM c`, `FETCH RELATIVE -1 ...` (ABSOLUTE, FORWARD,
/// BACKWARD): the parser takes no sign on a FETCH count, so the statement
/// is parsed without it and the count negated after. None: no signed
/// count.
fn parse_signed_fetch(sql: &str) -> Option<Result<DfStatement>> {
    use datafusion::sql::sqlparser::ast::{FetchDirection as D, Statement, Value};
    let words: Vec<&str> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    if !words.first()?.eq_ignore_ascii_case("fetch") {
        return None;
    }
    let signed =
        |w: &str| w.len() > 1 && w.starts_with('-') && w[1..].chars().all(|c| c.is_ascii_digit());
    // `FETCH -n` or `FETCH <direction> -n`.
    let at = (1..words.len().min(3)).find(|&i| signed(words[i]))?;
    let mut unsigned = words.clone();
    unsigned[at] = &words[at][1..];
    let parse = || -> Result<DfStatement> {
        let mut statement = Session::parse(&unsigned.join(" "))
            .map_err(without_position)?
            .pop_front()
            .ok_or_else(|| QuiverError::Syntax("FETCH needs a cursor".into()))?;
        let direction = match &mut statement {
            DfStatement::Statement(s) => match s.as_mut() {
                Statement::Fetch { direction, .. } => Some(direction),
                _ => None,
            },
            _ => None,
        };
        if let Some(
            D::Count { limit }
            | D::Absolute { limit }
            | D::Relative { limit }
            | D::Forward { limit: Some(limit) }
            | D::Backward { limit: Some(limit) },
        ) = direction
        {
            if let Value::Number(n, long) = &limit.value {
                limit.value = Value::Number(format!("-{n}"), *long);
            }
        }
        Ok(statement)
    };
    Some(parse())
}

/// `FETCH c`, `FETCH FROM c`, `FETCH IN c`: PostgreSQL's NEXT, which the
/// parser wants spelled out.
fn fetch_next(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    let name = match words.as_slice() {
        [fetch, name] if fetch.eq_ignore_ascii_case("fetch") => name,
        [fetch, from, name]
            if fetch.eq_ignore_ascii_case("fetch")
                && (from.eq_ignore_ascii_case("from") || from.eq_ignore_ascii_case("in")) =>
        {
            name
        }
        _ => return None,
    };
    Some(format!("FETCH NEXT FROM {name}"))
}

/// The checks of [`check_and_rewrite`], and the USER forms spelled as ROLE.
fn check_and_rewrite_users(sql: &str) -> Result<std::borrow::Cow<'_, str>> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    use std::borrow::Cow;

    // Fewer characters than a too-long chain needs, fewer parentheses than
    // too deep a nesting of calls, and no USER: nothing to do.
    let mentions_user = sql.len() >= 4 && sql.to_ascii_lowercase().contains("user");
    let parentheses = sql.bytes().filter(|b| *b == b'(').count();
    if sql.len() < 2 * MAX_OPERATOR_CHAIN && parentheses <= MAX_CALL_NESTING && !mentions_user {
        return Ok(Cow::Borrowed(sql));
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize()?;
    // Operators at each open parenthesis level since the last separator.
    let mut chains: Vec<usize> = vec![0];
    // For each open parenthesis, whether it opened a call (it follows a
    // word), and how many calls are open.
    let mut calls: Vec<bool> = Vec::new();
    let mut open_calls = 0;
    let mut after_word = false;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket => {
                chains.push(0);
                let call = after_word && *token == Token::LParen;
                calls.push(call);
                open_calls += usize::from(call);
                if open_calls > MAX_CALL_NESTING {
                    return Err(crate::error::QuiverError::StatementTooComplex(format!(
                        "statement is nested too deeply: more than {MAX_CALL_NESTING} function calls inside one another"
                    )));
                }
            }
            Token::RParen | Token::RBracket => {
                chains.pop();
                if chains.is_empty() {
                    chains.push(0);
                }
                open_calls -= usize::from(calls.pop().unwrap_or(false));
            }
            Token::Comma | Token::SemiColon => *chains.last_mut().expect("a level") = 0,
            Token::Whitespace(_) | Token::Word(_) | Token::Number(..) => {}
            Token::SingleQuotedString(_) | Token::DoubleQuotedString(_) => {}
            _ => *chains.last_mut().expect("a level") += 1,
        }
        if let Token::Word(w) = token {
            if matches!(w.keyword, Keyword::AND | Keyword::OR) {
                *chains.last_mut().expect("a level") += 1;
            }
        }
        if !matches!(token, Token::Whitespace(_)) {
            // A parenthesis after a word opens a call, unless the word is
            // one of SQL's own (`AND (`, `WHERE (`, `IN (`, `EXISTS (`).
            after_word = match token {
                Token::Word(w) => !matches!(
                    w.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::NOT
                        | Keyword::WHERE
                        | Keyword::SELECT
                        | Keyword::ON
                        | Keyword::IN
                        | Keyword::WHEN
                        | Keyword::THEN
                        | Keyword::ELSE
                        | Keyword::CASE
                        | Keyword::FROM
                        | Keyword::BY
                        | Keyword::AS
                        | Keyword::EXISTS
                        | Keyword::VALUES
                        | Keyword::USING
                        | Keyword::HAVING
                        | Keyword::IS
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::BETWEEN
                        | Keyword::RETURNING
                        | Keyword::SET
                        | Keyword::INTO
                        | Keyword::ALL
                        | Keyword::ANY
                        | Keyword::SOME
                        | Keyword::DISTINCT
                        | Keyword::UNION
                        | Keyword::EXCEPT
                        | Keyword::INTERSECT
                        | Keyword::JOIN
                        | Keyword::LATERAL
                        | Keyword::WITH
                        | Keyword::LIMIT
                        | Keyword::OFFSET
                ),
                _ => false,
            };
        }
        if chains.last().copied().unwrap_or(0) > MAX_OPERATOR_CHAIN {
            return Err(crate::error::QuiverError::StatementTooComplex(format!(
                "statement is too complex: more than {MAX_OPERATOR_CHAIN} operators chained in one expression"
            )));
        }
    }
    if !mentions_user {
        return Ok(Cow::Borrowed(sql));
    }
    // Rewrite `CREATE|ALTER|DROP USER` at the start of a statement.
    let significant = |t: &Token| !matches!(t, Token::Whitespace(_));
    let mut out = String::with_capacity(sql.len() + 16);
    let mut previous: Vec<Keyword> = Vec::new();
    let mut pending_login = false;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        i += 1;
        if !significant(token) {
            out.push_str(&token.to_string());
            continue;
        }
        let keyword = match token {
            Token::Word(w) => Some(w.keyword),
            _ => None,
        };
        let at_start = previous.len() == 1
            && matches!(
                previous[0],
                Keyword::CREATE | Keyword::ALTER | Keyword::DROP
            );
        if at_start && keyword == Some(Keyword::USER) {
            out.push_str("ROLE");
            pending_login = previous[0] == Keyword::CREATE;
            previous.push(Keyword::ROLE);
            continue;
        }
        out.push_str(&token.to_string());
        if *token == Token::SemiColon {
            previous.clear();
            continue;
        }
        previous.push(keyword.unwrap_or(Keyword::NoKeyword));
        // CREATE USER name: LOGIN is the default. Insert it after the name
        // (skipping IF NOT EXISTS), folding a WITH that follows.
        if pending_login
            && !matches!(keyword, Some(Keyword::IF | Keyword::NOT | Keyword::EXISTS))
            && previous.len() >= 3
        {
            pending_login = false;
            let mentions_nologin = tokens[i..]
                .iter()
                .take_while(|t| **t != Token::SemiColon)
                .any(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::NOLOGIN));
            if mentions_nologin {
                continue;
            }
            out.push_str(" WITH LOGIN");
            let next = tokens[i..].iter().position(significant).map(|p| p + i);
            if let Some(n) = next {
                if matches!(&tokens[n], Token::Word(w) if w.keyword == Keyword::WITH) {
                    for t in &tokens[i..n] {
                        out.push_str(&t.to_string());
                    }
                    i = n + 1;
                }
            }
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_options_and_unlogged_are_blanked() {
        assert_eq!(
            without_maintenance_options("VACUUM (VERBOSE, ANALYZE) t").unwrap(),
            "VACUUM                    t"
        );
        assert_eq!(
            without_maintenance_options("vacuum full\n analyze t").unwrap(),
            "vacuum     \n         t"
        );
        assert_eq!(
            without_maintenance_options("analyse verbose t").unwrap(),
            "ANALYZE         t"
        );
        assert!(without_maintenance_options("VACUUM t").is_none());
        assert!(without_maintenance_options("ANALYZE \"verbose\"").is_none());
        assert!(without_maintenance_options("SELECT 1").is_none());
        assert_eq!(
            without_unlogged("create  UNLOGGED table t (a int)").unwrap(),
            "create           table t (a int)"
        );
        assert!(without_unlogged("CREATE UNLOGGEDX TABLE t").is_none());
        assert!(without_unlogged("CREATE TABLE unlogged (a int)").is_none());
    }

    #[test]
    fn overriding_is_read_from_inserts_only() {
        let (sql, overriding) = strip_overriding(
            "INSERT INTO t (id, \"b\") OVERRIDING SYSTEM VALUE VALUES (1, 'overriding user value')",
        )
        .unwrap();
        assert_eq!(overriding, Overriding::System);
        assert_eq!(
            sql,
            "INSERT INTO t (id, \"b\")                         VALUES (1, 'overriding user value')"
        );
        let (sql, overriding) =
            strip_overriding("insert into t\n overriding user value select 1").unwrap();
        assert_eq!(overriding, Overriding::User);
        assert_eq!(sql, "insert into t\n                       select 1");
        let (_, overriding) =
            strip_overriding("insert into idp (id, v) overriding system value values ($1, $2)")
                .unwrap();
        assert_eq!(overriding, Overriding::System);
        assert!(strip_overriding("INSERT INTO t VALUES ('overriding system value')").is_none());
        assert!(strip_overriding("SELECT 'x' AS overriding").is_none());
    }

    #[test]
    fn move_is_the_fetch_it_skips() {
        assert_eq!(move_as_fetch("MOVE c").unwrap(), "FETCH NEXT FROM c");
        assert_eq!(
            move_as_fetch("move forward 5 in c;").unwrap(),
            "FETCH forward 5 in c;"
        );
        assert_eq!(move_as_fetch("SELECT 1"), None);
        assert_eq!(move_as_fetch("removed"), None);
    }

    #[test]
    fn fetch_without_a_direction_is_next() {
        assert_eq!(fetch_next("FETCH c").unwrap(), "FETCH NEXT FROM c");
        assert_eq!(
            fetch_next("fetch in \"C\";").unwrap(),
            "FETCH NEXT FROM \"C\""
        );
        assert_eq!(fetch_next("FETCH 5 FROM c"), None);
        assert_eq!(fetch_next("SELECT c"), None);
    }

    #[test]
    fn calls_nest_twenty_deep() {
        let nested = |n: usize| format!("SELECT {}1{}", "abs(".repeat(n), ")".repeat(n));
        assert!(check_and_rewrite(&nested(MAX_CALL_NESTING)).is_ok());
        let err = check_and_rewrite(&nested(MAX_CALL_NESTING + 1)).unwrap_err();
        assert_eq!(err.sqlstate().code(), "54001", "{err}");
        // Parentheses that are not calls, and calls side by side, are not
        // nesting calls.
        let parens = format!("SELECT {}1{}", "(".repeat(30), ")".repeat(30));
        assert!(check_and_rewrite(&parens).is_ok());
        let side_by_side = format!("SELECT {}", vec!["abs(1)"; 40].join(" + "));
        assert!(check_and_rewrite(&side_by_side).is_ok());
    }

    #[test]
    fn user_statements_become_role_statements() {
        let cases = [
            ("CREATE USER bob", "CREATE ROLE bob WITH LOGIN"),
            (
                "create user bob with password 'x' superuser",
                "create ROLE bob WITH LOGIN  password 'x' superuser",
            ),
            (
                "CREATE USER IF NOT EXISTS \"Bob\" PASSWORD 'x'",
                "CREATE ROLE IF NOT EXISTS \"Bob\" WITH LOGIN PASSWORD 'x'",
            ),
            ("CREATE USER bob NOLOGIN", "CREATE ROLE bob NOLOGIN"),
            ("ALTER USER bob PASSWORD 'y'", "ALTER ROLE bob PASSWORD 'y'"),
            ("DROP USER IF EXISTS bob", "DROP ROLE IF EXISTS bob"),
            ("SELECT current_user", "SELECT current_user"),
            ("SELECT 1; DROP USER a", "SELECT 1; DROP ROLE a"),
        ];
        for (sql, want) in cases {
            assert_eq!(check_and_rewrite(sql).unwrap(), want, "{sql}");
        }
    }

    #[test]
    fn long_operator_chains_are_refused() {
        let ok = format!("SELECT {}1", "1+".repeat(MAX_OPERATOR_CHAIN - 1));
        assert!(check_and_rewrite(&ok).is_ok());
        let chained = format!("SELECT {}1", "1+".repeat(MAX_OPERATOR_CHAIN + 1));
        assert!(check_and_rewrite(&chained).is_err());
        let listed = format!("SELECT {}1", "1, ".repeat(3 * MAX_OPERATOR_CHAIN));
        assert!(check_and_rewrite(&listed).is_ok());
    }
}
