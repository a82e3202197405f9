//! `x BETWEEN SYMMETRIC a AND b`, which the parser does not read: true
//! when `x` lies between the two bounds in either order. The text is
//! marked before parsing (`BETWEEN __quiver_symmetric(a) AND b`) and the
//! parsed statement spelled as PostgreSQL defines the form: `(x BETWEEN a
//! AND b OR x BETWEEN b AND a)`, under `NOT` for `NOT BETWEEN SYMMETRIC`.
//! (Not with `least`/`greatest`, which skip a NULL bound where PostgreSQL's
//! answer is NULL.) `BETWEEN ASYMMETRIC`, the default, loses its word.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, UnaryOperator,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

pub(crate) const MARKER: &str = "__quiver_symmetric";

/// The text with each `BETWEEN SYMMETRIC a` spelled `BETWEEN
/// __quiver_symmetric(a)`; None when it has no such form.
pub(crate) fn mark(sql: &str) -> Option<String> {
    if !sql.to_ascii_lowercase().contains("symmetric") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let keyword = |t: &Token, k: Keyword| matches!(t, Token::Word(w) if w.keyword == k);
    let mut out = String::with_capacity(sql.len() + 32);
    let mut changed = false;
    // Open marks: the parenthesis and CASE depth at which each one's
    // bound ends (at the next AND there).
    let mut open: Vec<(usize, usize)> = Vec::new();
    let (mut parens, mut cases) = (0usize, 0usize);
    let mut previous: Option<&Token> = None;
    for token in &tokens {
        if matches!(token, Token::Whitespace(_)) {
            out.push_str(&token.to_string());
            continue;
        }
        let after_between = previous.is_some_and(|p| keyword(p, Keyword::BETWEEN));
        previous = Some(token);
        match token {
            Token::LParen => parens += 1,
            Token::RParen => parens = parens.saturating_sub(1),
            t if keyword(t, Keyword::CASE) => cases += 1,
            t if keyword(t, Keyword::END) => cases = cases.saturating_sub(1),
            t if keyword(t, Keyword::AND) && open.last() == Some(&(parens, cases)) => {
                open.pop();
                out.push_str(") ");
            }
            t if after_between && keyword(t, Keyword::SYMMETRIC) => {
                out.push_str(MARKER);
                out.push('(');
                open.push((parens, cases));
                changed = true;
                continue;
            }
            t if after_between && keyword(t, Keyword::ASYMMETRIC) => {
                changed = true;
                continue;
            }
            _ => {}
        }
        out.push_str(&token.to_string());
    }
    (changed && open.is_empty()).then_some(out)
}

/// Spells each marked BETWEEN of the statement as the OR of both orders.
pub(crate) fn rewrite(statement: &mut datafusion::sql::sqlparser::ast::Statement) {
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(statement, |expr| {
        if let Expr::Between {
            expr: x,
            negated,
            low,
            high,
        } = expr
        {
            if let Some(a) = marked_bound(low) {
                let between = |low: Expr, high: Expr| Expr::Between {
                    expr: x.clone(),
                    negated: false,
                    low: Box::new(low),
                    high: Box::new(high),
                };
                let either = Expr::Nested(Box::new(Expr::BinaryOp {
                    left: Box::new(between(a.clone(), (**high).clone())),
                    op: BinaryOperator::Or,
                    right: Box::new(between((**high).clone(), a)),
                }));
                *expr = match negated {
                    true => Expr::Nested(Box::new(Expr::UnaryOp {
                        op: UnaryOperator::Not,
                        expr: Box::new(either),
                    })),
                    false => either,
                };
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `a` of a bound written `__quiver_symmetric(a)`.
fn marked_bound(low: &Expr) -> Option<Expr> {
    let Expr::Function(function) = low else {
        return None;
    };
    if function.name.to_string() != MARKER {
        return None;
    }
    let FunctionArguments::List(list) = &function.args else {
        return None;
    };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => Some(a.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_low_bound_is_marked_up_to_its_and() {
        assert_eq!(
            mark("SELECT x NOT BETWEEN SYMMETRIC f(a, b) + 1 AND 3 AND y").unwrap(),
            "SELECT x NOT BETWEEN __quiver_symmetric( f(a, b) + 1 ) AND 3 AND y"
        );
        assert_eq!(
            mark("SELECT x between symmetric CASE WHEN p AND q THEN 1 END and 2").unwrap(),
            "SELECT x between __quiver_symmetric( CASE WHEN p AND q THEN 1 END ) and 2"
        );
        assert_eq!(
            mark("SELECT x BETWEEN ASYMMETRIC 1 AND 2").unwrap(),
            "SELECT x BETWEEN  1 AND 2"
        );
        assert_eq!(mark("SELECT 'between symmetric'"), None);
        assert_eq!(mark("SELECT symmetric FROM t"), None);
    }
}
