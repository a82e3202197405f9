//! PostgreSQL-flavoured SQL that every front end shares, with no protocol
//! in it: PostgreSQL's casts, operators and type rules as DataFusion
//! functions and analyzer rules, the names of result columns, the system
//! catalogs (pg_catalog, information_schema, quiver_*), session parameters,
//! the text forms of values and the COPY codecs.
//!
//! Sessions plan with it; the pgwire front end and the REPL print with it.

/// The `ScalarUDFImpl` methods of a function that wraps one of
/// DataFusion's (its field `inner`) and keeps that function's signature,
/// types, strictness and ordering.
macro_rules! forward_to_inner {
    () => {
        fn signature(&self) -> &datafusion::logical_expr::Signature {
            self.inner.signature()
        }

        fn coerce_types(
            &self,
            args: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::error::Result<Vec<datafusion::arrow::datatypes::DataType>> {
            self.inner.coerce_types(args)
        }

        fn return_type(
            &self,
            args: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
            self.inner.return_type(args)
        }

        fn is_strict(&self) -> bool {
            self.inner.is_strict()
        }

        fn output_ordering(
            &self,
            input: &[datafusion::logical_expr::sort_properties::ExprProperties],
        ) -> datafusion::error::Result<datafusion::logical_expr::sort_properties::SortProperties> {
            self.inner.output_ordering(input)
        }
    };
}
pub(crate) use forward_to_inner;

pub mod advisory;
pub(crate) mod between_symmetric;
pub mod catalog;
pub mod column_names;
pub mod context;
pub mod copy;
mod copy_columns;
pub mod copy_options;
pub mod dialect;
pub mod filter_estimate;
pub mod join_order;
pub mod lateral;
pub mod order_by;
pub mod ordered_input;
pub mod outer_using;
pub mod pg_age;
pub mod pg_arithmetic;
pub mod pg_arrays;
pub mod pg_bpchar;
pub mod pg_calendar;
pub mod pg_casts;
pub mod pg_datestyle;
pub mod pg_datetime;
pub mod pg_extract;
pub mod pg_generate_series;
pub mod pg_interval;
pub mod pg_interval_groups;
pub mod pg_json;
pub mod pg_make_interval;
pub mod pg_math;
pub mod pg_ordered_set;
pub mod pg_round;
pub mod pg_subqueries;
pub mod pg_text;
pub mod pg_timezone;
pub mod pg_to_char;
pub mod pg_to_number;
pub mod pg_to_timestamp;
pub mod pg_types_in;
pub mod pg_values;
pub mod pg_width_bucket;
pub mod placeholders;
pub mod rows;
pub mod sequence_ddl;
pub mod sequences;
pub mod session_functions;
pub mod set_operations;
pub mod settings;
pub mod sleep;
pub mod stream;
pub mod syntax_error;
pub mod types;
pub mod whole_rows;

use std::collections::VecDeque;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Ident;

use crate::error::Result;

pub use copy_options::{column_from_text, BadValue, CopyFormat, CopyIn, CopyOptions, CopyOut};
pub use stream::RowStream;

/// Calls `f` on every SELECT of a statement: each query's, both sides of
/// its set operations, and those of its subqueries, outer ones first.
/// `name(args ...)` with `clauses` (an ORDER BY in the parentheses): a
/// plain function call, for the rewrites of a statement's AST.
pub(crate) fn function_call(
    name: &str,
    args: Vec<datafusion::sql::sqlparser::ast::Expr>,
    clauses: Vec<datafusion::sql::sqlparser::ast::FunctionArgumentClause>,
) -> datafusion::sql::sqlparser::ast::Expr {
    use datafusion::sql::sqlparser::ast::{
        Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
        Ident, ObjectName,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses,
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

pub fn for_each_select(
    statement: &mut datafusion::sql::sqlparser::ast::Statement,
    mut f: impl FnMut(&mut datafusion::sql::sqlparser::ast::Select),
) {
    use datafusion::sql::sqlparser::ast::{Query, Select, SetExpr, VisitMut, VisitorMut};
    use std::ops::ControlFlow;

    fn walk(body: &mut SetExpr, f: &mut dyn FnMut(&mut Select)) {
        match body {
            SetExpr::Select(select) => f(select),
            SetExpr::SetOperation { left, right, .. } => {
                walk(left, f);
                walk(right, f);
            }
            // A parenthesized query is visited as a query of its own.
            _ => {}
        }
    }

    struct Selects<'a>(&'a mut dyn FnMut(&mut Select));
    impl VisitorMut for Selects<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            walk(&mut query.body, self.0);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Selects(&mut f));
}

/// Postgres folds unquoted identifiers to lower case.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// How deep the parser may recurse. A level of parentheses costs it a few
/// levels: this takes about 500 nested parentheses, as generated SQL can
/// have (PostgreSQL's own limit is its stack, about a thousand), and
/// refuses 10,000 with `54001`. The parser grows its stack as it recurses,
/// so depth cannot overflow a thread's stack.
pub const MAX_PARSER_RECURSION: usize = 2_000;

/// Splits SQL text into statements with the PostgreSQL dialect. (Sessions
/// check and rewrite the text first: `Session::parse`.)
pub fn parse_statements(sql: &str) -> Result<VecDeque<DfStatement>> {
    datafusion::sql::parser::DFParserBuilder::new(sql)
        .with_dialect(&dialect::Postgres)
        .with_recursion_limit(MAX_PARSER_RECURSION)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| syntax_error::from_datafusion(sql, e))
        .map(|mut statements| {
            let symmetric = sql.contains(between_symmetric::MARKER);
            let make_interval = sql.to_ascii_lowercase().contains("make_interval");
            let whole_rows = whole_rows::may_apply(sql);
            if symmetric || make_interval || whole_rows {
                for statement in statements.iter_mut() {
                    let statement = match statement {
                        DfStatement::Explain(explain) => explain.statement.as_mut(),
                        other => other,
                    };
                    if let DfStatement::Statement(s) = statement {
                        if symmetric {
                            between_symmetric::rewrite(s);
                        }
                        if make_interval {
                            pg_make_interval::positional_arguments(s);
                        }
                        if whole_rows {
                            whole_rows::rewrite(s);
                        }
                    }
                }
            }
            statements
        })
}
