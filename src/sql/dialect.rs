//! The PostgreSQL dialect the server parses with: sqlparser's, with
//! `IS [NOT] DISTINCT FROM` and the prefix operators at PostgreSQL's
//! precedence.
//!
//! sqlparser reads the right operand of `IS [NOT] DISTINCT FROM` as a
//! whole expression, so `a IS NOT DISTINCT FROM b AND c` became
//! `a IS NOT DISTINCT FROM (b AND c)`: a wrong answer. PostgreSQL binds
//! `IS` tighter than `NOT`, `AND` and `OR`.
//!
//! sqlparser also reads the operand of a unary minus up to `*` and `/`,
//! so `-2 ^ 2` was `-(2 ^ 2)`, -4; PostgreSQL binds unary minus (and plus)
//! tighter than `^` and `AT TIME ZONE`: `(-2) ^ 2`, 4. And it read the
//! operand of the prefix operators `@`, `~`, `|/` and `||/` up to `+` and
//! `-`, where PostgreSQL gives them the precedence of its other
//! operators: `@ -5 + 2` is `@ (-5 + 2)`, 3.
//!
//! [`Postgres`] reads these operands at PostgreSQL's precedence and is
//! otherwise sqlparser's
//! `PostgreSqlDialect`: it forwards every method that dialect overrides
//! (the others keep the trait's defaults, as that dialect does) and
//! reports that dialect's type, so the parser's checks of the dialect
//! (`dialect_of!`) see PostgreSQL.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{Expr, UnaryOperator};
use datafusion::sql::sqlparser::dialect::{Dialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

/// sqlparser's PostgreSQL dialect with PostgreSQL's precedence for
/// `IS [NOT] DISTINCT FROM` and the prefix operators.
#[derive(Debug, Default, Clone, Copy)]
pub struct Postgres;

impl Dialect for Postgres {
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let (op, precedence) = match parser.peek_token_ref().token {
            // Up to, not including, AT TIME ZONE (and so ^): `::` and
            // subscripts still bind tighter.
            Token::Minus => (UnaryOperator::Minus, self.prec_value(Precedence::AtTz)),
            Token::Plus => (UnaryOperator::Plus, self.prec_value(Precedence::AtTz)),
            Token::AtSign => (UnaryOperator::PGAbs, self.prec_value(Precedence::PgOther)),
            Token::Tilde => (
                UnaryOperator::BitwiseNot,
                self.prec_value(Precedence::PgOther),
            ),
            Token::PGSquareRoot => (
                UnaryOperator::PGSquareRoot,
                self.prec_value(Precedence::PgOther),
            ),
            Token::PGCubeRoot => (
                UnaryOperator::PGCubeRoot,
                self.prec_value(Precedence::PgOther),
            ),
            _ => return None,
        };
        parser.advance_token();
        Some(
            parser
                .parse_subexpr(precedence)
                .map(|operand| Expr::UnaryOp {
                    op,
                    expr: Box::new(operand),
                }),
        )
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        let distinct = if parser.parse_keywords(&[Keyword::IS, Keyword::DISTINCT, Keyword::FROM]) {
            true
        } else if parser.parse_keywords(&[
            Keyword::IS,
            Keyword::NOT,
            Keyword::DISTINCT,
            Keyword::FROM,
        ]) {
            false
        } else {
            return None;
        };
        let left = Box::new(expr.clone());
        Some(
            parser
                .parse_subexpr(self.prec_value(Precedence::Is))
                .map(|right| match distinct {
                    true => Expr::IsDistinctFrom(left, Box::new(right)),
                    false => Expr::IsNotDistinctFrom(left, Box::new(right)),
                }),
        )
    }

    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        PostgreSqlDialect {}.identifier_quote_style(identifier)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_identifier_part(ch)
    }

    fn supports_unicode_string_literal(&self) -> bool {
        PostgreSqlDialect {}.supports_unicode_string_literal()
    }

    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        PostgreSqlDialect {}.is_reserved_for_identifier(kw)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        PostgreSqlDialect {}.is_custom_operator_part(ch)
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        PostgreSqlDialect {}.get_next_precedence(parser)
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        PostgreSqlDialect {}.supports_filter_during_aggregation()
    }

    fn supports_group_by_expr(&self) -> bool {
        PostgreSqlDialect {}.supports_group_by_expr()
    }

    fn prec_value(&self, prec: Precedence) -> u8 {
        PostgreSqlDialect {}.prec_value(prec)
    }

    fn allow_extract_custom(&self) -> bool {
        PostgreSqlDialect {}.allow_extract_custom()
    }

    fn allow_extract_single_quotes(&self) -> bool {
        PostgreSqlDialect {}.allow_extract_single_quotes()
    }

    fn supports_create_index_with_clause(&self) -> bool {
        PostgreSqlDialect {}.supports_create_index_with_clause()
    }

    fn supports_explain_with_utility_options(&self) -> bool {
        PostgreSqlDialect {}.supports_explain_with_utility_options()
    }

    fn supports_listen_notify(&self) -> bool {
        PostgreSqlDialect {}.supports_listen_notify()
    }

    fn supports_factorial_operator(&self) -> bool {
        PostgreSqlDialect {}.supports_factorial_operator()
    }

    fn supports_bitwise_shift_operators(&self) -> bool {
        PostgreSqlDialect {}.supports_bitwise_shift_operators()
    }

    fn supports_comment_on(&self) -> bool {
        PostgreSqlDialect {}.supports_comment_on()
    }

    fn supports_load_extension(&self) -> bool {
        PostgreSqlDialect {}.supports_load_extension()
    }

    fn supports_named_fn_args_with_colon_operator(&self) -> bool {
        PostgreSqlDialect {}.supports_named_fn_args_with_colon_operator()
    }

    fn supports_named_fn_args_with_expr_name(&self) -> bool {
        PostgreSqlDialect {}.supports_named_fn_args_with_expr_name()
    }

    fn supports_empty_projections(&self) -> bool {
        PostgreSqlDialect {}.supports_empty_projections()
    }

    fn supports_nested_comments(&self) -> bool {
        PostgreSqlDialect {}.supports_nested_comments()
    }

    fn supports_string_escape_constant(&self) -> bool {
        PostgreSqlDialect {}.supports_string_escape_constant()
    }

    fn supports_numeric_literal_underscores(&self) -> bool {
        PostgreSqlDialect {}.supports_numeric_literal_underscores()
    }

    fn supports_array_typedef_with_brackets(&self) -> bool {
        PostgreSqlDialect {}.supports_array_typedef_with_brackets()
    }

    fn supports_geometric_types(&self) -> bool {
        PostgreSqlDialect {}.supports_geometric_types()
    }

    fn supports_set_names(&self) -> bool {
        PostgreSqlDialect {}.supports_set_names()
    }

    fn supports_alter_column_type_using(&self) -> bool {
        PostgreSqlDialect {}.supports_alter_column_type_using()
    }

    fn supports_notnull_operator(&self) -> bool {
        PostgreSqlDialect {}.supports_notnull_operator()
    }

    fn supports_interval_options(&self) -> bool {
        PostgreSqlDialect {}.supports_interval_options()
    }

    fn supports_insert_table_alias(&self) -> bool {
        PostgreSqlDialect {}.supports_insert_table_alias()
    }

    fn supports_create_table_like_parenthesized(&self) -> bool {
        PostgreSqlDialect {}.supports_create_table_like_parenthesized()
    }

    fn supports_select_wildcard_with_alias(&self) -> bool {
        PostgreSqlDialect {}.supports_select_wildcard_with_alias()
    }

    fn supports_comma_separated_trim(&self) -> bool {
        PostgreSqlDialect {}.supports_comma_separated_trim()
    }

    fn supports_xml_expressions(&self) -> bool {
        PostgreSqlDialect {}.supports_xml_expressions()
    }

    fn supports_comment_optimizer_hint(&self) -> bool {
        PostgreSqlDialect {}.supports_comment_optimizer_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Expr {
        Parser::new(&Postgres)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_expr())
            .unwrap()
    }

    #[test]
    fn is_distinct_from_binds_as_in_postgresql() {
        for (sql, grouped) in [
            (
                "a IS NOT DISTINCT FROM b AND c",
                "(a IS NOT DISTINCT FROM b) AND c",
            ),
            (
                "x IS DISTINCT FROM y + 1 OR z",
                "(x IS DISTINCT FROM (y + 1)) OR z",
            ),
            (
                "NOT a IS DISTINCT FROM b AND c",
                "(NOT (a IS DISTINCT FROM b)) AND c",
            ),
            (
                "p AND q IS DISTINCT FROM r OR s",
                "(p AND (q IS DISTINCT FROM r)) OR s",
            ),
            (
                "a = b IS DISTINCT FROM c = d",
                "(a = b) IS DISTINCT FROM (c = d)",
            ),
            (
                "a IS DISTINCT FROM b IS DISTINCT FROM c AND d",
                "((a IS DISTINCT FROM b) IS DISTINCT FROM c) AND d",
            ),
            (
                "f(x IS DISTINCT FROM y OR z) AND w",
                "f((x IS DISTINCT FROM y) OR z) AND w",
            ),
        ] {
            // Spans aside (which equality ignores), the same tree.
            assert_eq!(parse(sql), unnest(parse(grouped)), "{sql}");
        }
    }

    #[test]
    fn prefix_operators_bind_as_in_postgresql() {
        for (sql, grouped) in [
            ("-2 ^ 2", "(-2) ^ 2"),
            ("- x ^ 2 * 3", "((- x) ^ 2) * 3"),
            ("-x::int ^ 2", "(-(x::int)) ^ 2"),
            ("-a[1] * b", "(-(a[1])) * b"),
            ("- ts AT TIME ZONE 'UTC'", "(- ts) AT TIME ZONE 'UTC'"),
            ("+x ^ 2", "(+x) ^ 2"),
            ("@ -5 + 2", "@ ((-5) + 2)"),
            ("@ 2 * -3", "@ (2 * (-3))"),
            ("|/ 16 + 9", "|/ (16 + 9)"),
            ("||/ 27 + 37", "||/ (27 + 37)"),
            ("~ 1 + 2", "~ (1 + 2)"),
            ("~ 5 & 3", "(~ 5) & 3"),
            ("@ x = 3", "(@ x) = 3"),
            ("1 - -2", "1 - (-2)"),
            ("2 ^ -1", "2 ^ (-1)"),
            ("- - x", "-(-(x))"),
        ] {
            assert_eq!(parse(sql), unnest(parse(grouped)), "{sql}");
        }
    }

    /// `expr` without its parentheses (Nested nodes).
    fn unnest(expr: Expr) -> Expr {
        use datafusion::sql::sqlparser::ast::{VisitMut, VisitorMut};
        struct Unnest;
        impl VisitorMut for Unnest {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut Expr) -> std::ops::ControlFlow<()> {
                if let Expr::Nested(inner) = expr {
                    *expr = (**inner).clone();
                }
                std::ops::ControlFlow::Continue(())
            }
        }
        let mut expr = expr;
        let _ = expr.visit(&mut Unnest);
        expr
    }
}
