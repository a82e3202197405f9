//! CREATE SEQUENCE and ALTER SEQUENCE as PostgreSQL reads them: options in
//! any order (pg_dump writes `START WITH` before `INCREMENT BY`, which the
//! SQL parser's fixed order refuses), ALTER's RESTART and OWNED BY; and
//! the options of an identity column, which come through the SQL parser.

use datafusion::sql::sqlparser::ast::{
    DataType as SqlDataType, Expr, ObjectName, SequenceOptions as SqlOption, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::engine::sequence::{SequenceOptions, SequenceType};
use crate::error::{QuiverError, Result};

/// One option of CREATE or ALTER SEQUENCE (or of an identity column).
#[derive(Debug, Clone, PartialEq)]
pub enum SeqOption {
    As(SequenceType),
    Increment(i64),
    /// None: `NO MINVALUE`, the type's default.
    MinValue(Option<i64>),
    MaxValue(Option<i64>),
    Start(i64),
    /// ALTER only; None: back to the start value.
    Restart(Option<i64>),
    Cache(i64),
    Cycle(bool),
    /// `OWNED BY table.column` (its parts), or `OWNED BY NONE`.
    OwnedBy(Option<Vec<String>>),
}

/// CREATE SEQUENCE or ALTER SEQUENCE.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceStatement {
    pub alter: bool,
    pub temporary: bool,
    /// IF NOT EXISTS (CREATE) or IF EXISTS (ALTER).
    pub if_flag: bool,
    pub name: ObjectName,
    pub options: Vec<SeqOption>,
}

/// Whether `sql` starts with CREATE [TEMP|TEMPORARY|UNLOGGED] SEQUENCE or
/// ALTER SEQUENCE.
pub fn is_sequence_statement(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    match words.as_slice() {
        [first, second, ..] if first == "alter" || first == "create" => {
            let kind = match second.as_str() {
                "temp" | "temporary" | "unlogged" if first == "create" => words.get(2),
                _ => Some(second),
            };
            kind.is_some_and(|k| k.trim_end_matches(';') == "sequence")
        }
        _ => false,
    }
}

/// Parses one CREATE or ALTER SEQUENCE statement.
pub fn parse(sql: &str) -> Result<SequenceStatement> {
    let mut p = Parser::new(&crate::sql::dialect::Postgres).try_with_sql(sql)?;
    let alter = if p.parse_keyword(Keyword::ALTER) {
        true
    } else {
        p.expect_keyword(Keyword::CREATE)?;
        false
    };
    let temporary = !alter
        && p.parse_one_of_keywords(&[Keyword::TEMP, Keyword::TEMPORARY])
            .is_some();
    if !alter {
        // UNLOGGED: every sequence here is logged; accepted as PostgreSQL
        // accepts it.
        let _ = p.parse_keyword(Keyword::UNLOGGED);
    }
    p.expect_keyword(Keyword::SEQUENCE)?;
    let if_flag = if alter {
        p.parse_keywords(&[Keyword::IF, Keyword::EXISTS])
    } else {
        p.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
    };
    let name = p.parse_object_name(false)?;
    if alter {
        for (keywords, what) in [
            (&[Keyword::RENAME][..], "ALTER SEQUENCE ... RENAME"),
            (
                &[Keyword::OWNER, Keyword::TO][..],
                "ALTER SEQUENCE ... OWNER TO",
            ),
            (
                &[Keyword::SET, Keyword::SCHEMA][..],
                "ALTER SEQUENCE ... SET SCHEMA",
            ),
        ] {
            if p.parse_keywords(keywords) {
                return Err(QuiverError::FeatureNotSupported(format!(
                    "{what} is not supported"
                )));
            }
        }
    }
    let options = parse_options(&mut p, alter)?;
    let _ = p.consume_token(&Token::SemiColon);
    if p.peek_token().token != Token::EOF {
        return Err(QuiverError::InvalidStatement(format!(
            "syntax error at or near \"{}\"",
            p.peek_token().token
        )));
    }
    Ok(SequenceStatement {
        alter,
        temporary,
        if_flag,
        name,
        options,
    })
}

/// The options of CREATE or ALTER SEQUENCE (RESTART only for ALTER), in
/// any order, up to the first token that is none.
fn parse_options(p: &mut Parser, alter: bool) -> Result<Vec<SeqOption>> {
    let mut options = Vec::new();
    loop {
        if p.parse_keyword(Keyword::AS) {
            options.push(SeqOption::As(sequence_type(&p.parse_data_type()?)?));
        } else if p.parse_keyword(Keyword::INCREMENT) {
            let _ = p.parse_keyword(Keyword::BY);
            options.push(SeqOption::Increment(integer(p)?));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MINVALUE]) {
            options.push(SeqOption::MinValue(None));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::MAXVALUE]) {
            options.push(SeqOption::MaxValue(None));
        } else if p.parse_keywords(&[Keyword::NO, Keyword::CYCLE]) {
            options.push(SeqOption::Cycle(false));
        } else if p.parse_keyword(Keyword::MINVALUE) {
            options.push(SeqOption::MinValue(Some(integer(p)?)));
        } else if p.parse_keyword(Keyword::MAXVALUE) {
            options.push(SeqOption::MaxValue(Some(integer(p)?)));
        } else if p.parse_keyword(Keyword::START) {
            let _ = p.parse_keyword(Keyword::WITH);
            options.push(SeqOption::Start(integer(p)?));
        } else if alter && p.parse_keyword(Keyword::RESTART) {
            let with = p.parse_keyword(Keyword::WITH);
            let value = match p.peek_token().token {
                Token::Number(..) | Token::Minus | Token::Plus => Some(integer(p)?),
                _ if with => Some(integer(p)?),
                _ => None,
            };
            options.push(SeqOption::Restart(value));
        } else if p.parse_keyword(Keyword::CACHE) {
            options.push(SeqOption::Cache(integer(p)?));
        } else if p.parse_keyword(Keyword::CYCLE) {
            options.push(SeqOption::Cycle(true));
        } else if p.parse_keywords(&[Keyword::OWNED, Keyword::BY]) {
            if p.parse_keyword(Keyword::NONE) {
                options.push(SeqOption::OwnedBy(None));
            } else {
                let target = p.parse_object_name(false)?;
                let parts = target
                    .0
                    .iter()
                    .map(|part| match part.as_ident() {
                        Some(ident) => Ok(crate::sql::normalize_ident(ident)),
                        None => Err(QuiverError::Syntax(format!("bad OWNED BY target {target}"))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                options.push(SeqOption::OwnedBy(Some(parts)));
            }
        } else {
            break;
        }
    }
    Ok(options)
}

/// `GENERATED ... AS IDENTITY (options)` with its options in the order
/// the SQL parser reads (INCREMENT, MINVALUE, MAXVALUE, START, CACHE,
/// CYCLE), however the statement gave them. None when there is nothing
/// to reorder.
pub fn identity_options_in_order(sql: &str) -> Result<Option<String>> {
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    if !sql.to_ascii_lowercase().contains("identity") {
        return Ok(None);
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize()?;
    let significant = |t: &Token| !matches!(t, Token::Whitespace(_));
    let is_word = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    let mut out = String::with_capacity(sql.len());
    let mut changed = false;
    let mut last_two: [Option<&Token>; 2] = [None, None];
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        i += 1;
        out.push_str(&token.to_string());
        if !significant(token) {
            continue;
        }
        let after_identity = matches!(last_two, [Some(a), Some(b)]
            if is_word(a, Keyword::AS) && is_word(b, Keyword::IDENTITY));
        last_two = [last_two[1], Some(token)];
        if !(after_identity && *token == Token::LParen) {
            continue;
        }
        // The options up to the matching parenthesis.
        let mut depth = 1;
        let mut end = i;
        while end < tokens.len() {
            match tokens[end] {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            end += 1;
        }
        let inner: String = tokens[i..end].iter().map(|t| t.to_string()).collect();
        let mut p = Parser::new(&crate::sql::dialect::Postgres).try_with_sql(&inner)?;
        let options = parse_options(&mut p, false)?;
        if p.peek_token().token != Token::EOF {
            return Err(QuiverError::FeatureNotSupported(format!(
                "the identity column option \"{}\" is not supported",
                p.peek_token().token
            )));
        }
        out.push_str(&canonical(&options));
        changed = true;
        i = end;
    }
    Ok(changed.then_some(out))
}

/// Options as the SQL parser's fixed order writes them.
fn canonical(options: &[SeqOption]) -> String {
    let mut parts: Vec<(usize, String)> = options
        .iter()
        .filter_map(|o| {
            Some(match o {
                SeqOption::Increment(v) => (0, format!("INCREMENT BY {v}")),
                SeqOption::MinValue(Some(v)) => (1, format!("MINVALUE {v}")),
                SeqOption::MinValue(None) => (1, "NO MINVALUE".into()),
                SeqOption::MaxValue(Some(v)) => (2, format!("MAXVALUE {v}")),
                SeqOption::MaxValue(None) => (2, "NO MAXVALUE".into()),
                SeqOption::Start(v) => (3, format!("START WITH {v}")),
                SeqOption::Cache(v) => (4, format!("CACHE {v}")),
                SeqOption::Cycle(true) => (5, "CYCLE".into()),
                SeqOption::Cycle(false) => (5, "NO CYCLE".into()),
                _ => return None,
            })
        })
        .collect();
    parts.sort_by_key(|(order, _)| *order);
    parts.dedup_by_key(|(order, _)| *order);
    parts
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The options of an identity column (`GENERATED ... AS IDENTITY (...)`),
/// as the SQL parser read them.
pub fn identity_options(options: &[SqlOption]) -> Result<Vec<SeqOption>> {
    let number = |e: &Expr| -> Result<i64> {
        let (negative, e) = match e {
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } => (true, expr.as_ref()),
            other => (false, other),
        };
        match e {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => to_i64(n, negative),
                other => Err(QuiverError::Syntax(format!(
                    "expected a number, found {other}"
                ))),
            },
            other => Err(QuiverError::Syntax(format!(
                "expected a number, found {other}"
            ))),
        }
    };
    options
        .iter()
        .map(|o| {
            Ok(match o {
                SqlOption::IncrementBy(e, _) => SeqOption::Increment(number(e)?),
                SqlOption::MinValue(e) => SeqOption::MinValue(e.as_ref().map(number).transpose()?),
                SqlOption::MaxValue(e) => SeqOption::MaxValue(e.as_ref().map(number).transpose()?),
                SqlOption::StartWith(e, _) => SeqOption::Start(number(e)?),
                SqlOption::Cache(e) => SeqOption::Cache(number(e)?),
                // The parser's flag says NO CYCLE.
                SqlOption::Cycle(no) => SeqOption::Cycle(!no),
            })
        })
        .collect()
}

/// The options a new sequence of `default_type` gets from `given`.
pub fn options_for_new(default_type: SequenceType, given: &[SeqOption]) -> SequenceOptions {
    let data_type = given
        .iter()
        .rev()
        .find_map(|o| match o {
            SeqOption::As(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(default_type);
    let increment = given
        .iter()
        .rev()
        .find_map(|o| match o {
            SeqOption::Increment(i) => Some(*i),
            _ => None,
        })
        .unwrap_or(1);
    let defaults = SequenceOptions::defaults(data_type, if increment < 0 { -1 } else { 1 });
    let mut options = SequenceOptions {
        increment,
        ..defaults
    };
    let mut start_given = false;
    for option in given {
        match option {
            SeqOption::MinValue(Some(v)) => options.min = *v,
            SeqOption::MaxValue(Some(v)) => options.max = *v,
            SeqOption::Start(v) => {
                options.start = *v;
                start_given = true;
            }
            SeqOption::Cache(v) => options.cache = *v,
            SeqOption::Cycle(c) => options.cycle = *c,
            _ => {}
        }
    }
    if !start_given {
        options.start = if options.increment > 0 {
            options.min
        } else {
            options.max
        };
    }
    options
}

/// ALTER SEQUENCE: `current` changed by `given`; also the RESTART value
/// asked for, if any (its default: the new start).
pub fn options_altered(
    current: &SequenceOptions,
    given: &[SeqOption],
) -> (SequenceOptions, Option<i64>) {
    let mut options = current.clone();
    let mut restart = None;
    for option in given {
        match option {
            SeqOption::As(t) => {
                let (old_low, old_high) = options.data_type.bounds();
                let (low, high) = t.bounds();
                // Bounds that were the old type's defaults follow the type.
                if options.max == old_high {
                    options.max = high;
                }
                if options.min == old_low {
                    options.min = low;
                }
                options.data_type = *t;
            }
            SeqOption::Increment(i) => options.increment = *i,
            SeqOption::MinValue(v) => {
                options.min = v.unwrap_or(if options.increment > 0 {
                    1
                } else {
                    options.data_type.bounds().0
                })
            }
            SeqOption::MaxValue(v) => {
                options.max = v.unwrap_or(if options.increment > 0 {
                    options.data_type.bounds().1
                } else {
                    -1
                })
            }
            SeqOption::Start(v) => options.start = *v,
            SeqOption::Restart(v) => restart = Some(*v),
            SeqOption::Cache(v) => options.cache = *v,
            SeqOption::Cycle(c) => options.cycle = *c,
            SeqOption::OwnedBy(_) => {}
        }
    }
    let restart = restart.map(|v| v.unwrap_or(options.start));
    (options, restart)
}

fn sequence_type(data_type: &SqlDataType) -> Result<SequenceType> {
    match data_type {
        SqlDataType::SmallInt(_) | SqlDataType::Int2(_) => Ok(SequenceType::Smallint),
        SqlDataType::Int(_) | SqlDataType::Integer(_) | SqlDataType::Int4(_) => {
            Ok(SequenceType::Integer)
        }
        SqlDataType::BigInt(_) | SqlDataType::Int8(_) => Ok(SequenceType::Bigint),
        _ => Err(QuiverError::InvalidParameterValue(
            "sequence type must be smallint, integer, or bigint".into(),
        )),
    }
}

/// A signed integer literal.
fn integer(p: &mut Parser) -> Result<i64> {
    let negative = if p.consume_token(&Token::Minus) {
        true
    } else {
        let _ = p.consume_token(&Token::Plus);
        false
    };
    match p.next_token().token {
        Token::Number(n, _) => to_i64(&n, negative),
        other => Err(QuiverError::InvalidStatement(format!(
            "syntax error at or near \"{other}\""
        ))),
    }
}

fn to_i64(digits: &str, negative: bool) -> Result<i64> {
    let value: i128 = digits.parse().map_err(|_| {
        QuiverError::InvalidStatement(format!("syntax error at or near \"{digits}\""))
    })?;
    let value = if negative { -value } else { value };
    i64::try_from(value).map_err(|_| {
        QuiverError::OutOfRange(format!("value \"{value}\" is out of range for type bigint"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_in_any_order() {
        let s = parse(
            "CREATE SEQUENCE public.t_id_seq AS integer START WITH 5 INCREMENT BY -1 NO MINVALUE MAXVALUE 10 CACHE 1",
        )
        .unwrap();
        assert!(!s.alter);
        let options = options_for_new(SequenceType::Bigint, &s.options);
        assert_eq!(options.data_type, SequenceType::Integer);
        assert_eq!((options.increment, options.start), (-1, 5));
        assert_eq!((options.min, options.max), (i32::MIN as i64, 10));
    }

    #[test]
    fn alter_restarts_and_owns() {
        let s = parse("ALTER SEQUENCE IF EXISTS s RESTART OWNED BY t.id").unwrap();
        assert!(s.alter && s.if_flag);
        assert_eq!(s.options[0], SeqOption::Restart(None));
        assert_eq!(
            s.options[1],
            SeqOption::OwnedBy(Some(vec!["t".into(), "id".into()]))
        );
        let base = SequenceOptions::defaults(SequenceType::Bigint, 1);
        let (_, restart) = options_altered(
            &base,
            &parse("ALTER SEQUENCE s RESTART WITH 42").unwrap().options,
        );
        assert_eq!(restart, Some(42));
        assert!(parse("ALTER SEQUENCE s RENAME TO t").is_err());
    }

    #[test]
    fn identity_options_are_put_in_the_parser_order() {
        let sql = "CREATE TABLE t (id INT GENERATED ALWAYS AS IDENTITY (START WITH 10 INCREMENT BY 10), v INT)";
        let rewritten = identity_options_in_order(sql).unwrap().unwrap();
        assert_eq!(
            rewritten,
            "CREATE TABLE t (id INT GENERATED ALWAYS AS IDENTITY (INCREMENT BY 10 START WITH 10), v INT)"
        );
        assert_eq!(identity_options_in_order("SELECT 1").unwrap(), None);
    }

    #[test]
    fn sequence_statements_are_recognised() {
        assert!(is_sequence_statement("create temp sequence s"));
        assert!(is_sequence_statement("ALTER SEQUENCE s restart"));
        assert!(!is_sequence_statement("DROP SEQUENCE s"));
        assert!(!is_sequence_statement("CREATE TABLE sequence (a int)"));
    }
}
