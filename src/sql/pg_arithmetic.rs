//! PostgreSQL's numeric typing and arithmetic, as two analyzer rules
//! around DataFusion's type coercion.
//!
//! - Before coercion (the types are still the query's own): an integer
//!   literal that fits in 32 bits is an `integer` (DataFusion makes every
//!   integer literal a `bigint`), one that fits in 64 a `bigint`, and a
//!   larger one a `numeric`, also in VALUES columns and UNION branches, so
//!   `qty * 2` on an integer column is an integer; `sum(bigint)` and `avg`
//!   of integers and numerics are numerics; a bare `CAST(x AS numeric)`
//!   keeps the scale of an integer or numeric `x`; and where a numeric
//!   meets a float the numeric becomes a float, as PostgreSQL's type
//!   resolution prefers float8.
//! - After coercion, `+`, `-`, `*` and unary `-` on integers raise 22003
//!   (`integer out of range`) where DataFusion would wrap around, and a
//!   cast of a numeric or a float to an integer rounds (half away from
//!   zero for numeric, half to even for float) where DataFusion truncates;
//!   and a cast of text to a date or timestamp reads PostgreSQL's forms
//!   ([`super::pg_datetime`]).
//!
//! The rewritten expressions keep their names (the checked operators print
//! as the operators they replace), so plans and column names read as
//! before. Remove when DataFusion offers PostgreSQL semantics for these.
//!
//! Over 800 lines: the two analyzer rules and the functions they insert
//! belong together (each rule undoes what the other may not see); its tests
//! are a quarter of it.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Values, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::QuiverError;

/// DataFusion's session state with these rules around its type coercion.
pub fn session_state(
    config: datafusion::execution::context::SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    zone: super::pg_timezone::ZoneHandle,
    date_style: super::pg_datestyle::Handle,
) -> datafusion::execution::session_state::SessionState {
    use datafusion::execution::session_state::SessionStateBuilder;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    let mut rules = state.analyzer().rules.clone();
    rules.insert(0, Arc::new(IntegerLiterals));
    // Before the checked arithmetic, which reads the remaining casts of
    // text to dates and timestamps.
    rules.push(Arc::new(super::pg_timezone::SessionTimeZone {
        zone,
        date_style,
    }));
    rules.push(Arc::new(super::pg_bpchar::Bpchar));
    rules.push(Arc::new(IntegerArithmetic));
    rules.push(Arc::new(super::pg_subqueries::Subqueries));
    // After the JSON functions' `t.*` became rows (see `IntegerLiterals`):
    // a hidden sort column must not join them.
    rules.push(Arc::new(super::ordered_input::OrderedInput));
    rules.push(Arc::new(super::set_operations::CountedSetOperations));
    let mut planners = state.expr_planners().to_vec();
    planners.insert(0, Arc::new(super::pg_interval::IntervalArithmetic));
    planners.insert(0, Arc::new(super::pg_text::StartsWith));
    planners.insert(0, Arc::new(super::pg_arrays::ArrayOperators));
    planners.insert(0, Arc::new(super::pg_extract::ExtractPlanner));
    planners.insert(0, Arc::new(super::pg_json::JsonOperators));
    // Filters measured on a sample before DataFusion picks build sides.
    let mut physical = state.physical_optimizers().to_vec();
    let join_selection = physical
        .iter()
        .position(|r| r.name() == "join_selection")
        .unwrap_or(0);
    physical.insert(
        join_selection,
        Arc::new(super::filter_estimate::SampledSelectivity),
    );
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(physical)
        .with_analyzer_rules(rules)
        .with_expr_planners(planners)
        .with_optimizer_rule(Arc::new(super::join_order::JoinOrder))
        .build()
}

/// Integer literals typed as PostgreSQL types them (runs before type
/// coercion).
#[derive(Debug, Default)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn name(&self) -> &str {
        "pg_integer_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan
            .transform_up_with_subqueries(|node| {
                // LIMIT and OFFSET take bigint counts.
                if matches!(node, LogicalPlan::Limit(_)) {
                    return Ok(Transformed::no(node));
                }
                if let LogicalPlan::Values(values) = node {
                    return narrow_values(values).map(|t| t.update_data(LogicalPlan::Values));
                }
                if let LogicalPlan::RecursiveQuery(query) = node {
                    return recursive_work_table_types(query);
                }
                if let LogicalPlan::Union(union) = node {
                    // The planner gave the union its first branch's types
                    // before literals were narrowed: take them again, so
                    // that type coercion resolves the branches as they
                    // are now (`SELECT 1000 UNION SELECT int_col` is an
                    // integer).
                    let union = union_floats(union)?.data;
                    let LogicalPlan::Union(union) = union else {
                        unreachable!("union_floats returns a union")
                    };
                    let retyped =
                        datafusion::logical_expr::Union::try_new_with_loose_types(union.inputs)?;
                    return Ok(Transformed::yes(LogicalPlan::Union(union_nullability(
                        retyped,
                    )?)));
                }
                rewrite_expressions(node, |expr, schema| {
                    expr.transform_up(|e| match narrow_literal(e) {
                        Transformed {
                            data,
                            transformed: false,
                            ..
                        } => bare_numeric(data, schema)?
                            .transform_data(|e| real_meets_integer(e, schema))?
                            .transform_data(|e| float_beats_numeric(e, schema))?
                            .transform_data(|e| numeric_aggregates(e, schema))?
                            .transform_data(|e| smallint_shift(e, schema))?
                            .transform_data(|e| Ok(count_star(e)))?
                            .transform_data(|e| super::whole_rows::expand(e, schema))?
                            .transform_data(|e| {
                                super::pg_interval_groups::window_order_by_span(e, schema)
                            }),
                        narrowed => Ok(narrowed),
                    })
                })
            })?
            .data;
        refresh_outer_references(plan)
    }
}

/// A recursive query's work table keeps the types it was planned with
/// (`WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)`
/// reads `n` as a bigint): the static term, whose literals may have been
/// narrowed since, is cast back to them.
fn recursive_work_table_types(
    mut query: datafusion::logical_expr::RecursiveQuery,
) -> Result<Transformed<LogicalPlan>> {
    let mut work_table = None;
    query.recursive_term.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if scan.table_name.table() == query.name {
                work_table = Some(scan.source.schema());
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let static_schema = query.static_term.schema().clone();
    let Some(work_table) = work_table.filter(|w| {
        w.fields().len() == static_schema.fields().len()
            && w.fields()
                .iter()
                .zip(static_schema.fields())
                .any(|(w, s)| w.data_type() != s.data_type())
    }) else {
        return Ok(Transformed::no(LogicalPlan::RecursiveQuery(query)));
    };
    let columns = static_schema
        .iter()
        .zip(work_table.fields())
        .map(|((qualifier, field), wanted)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match field.data_type() == wanted.data_type() {
                true => column,
                false => Expr::Cast(Cast::new(Box::new(column), wanted.data_type().clone()))
                    .alias_qualified(qualifier.cloned(), field.name()),
            }
        })
        .collect();
    query.static_term = Arc::new(LogicalPlan::Projection(
        datafusion::logical_expr::Projection::try_new(columns, query.static_term.clone())?,
    ));
    Ok(Transformed::yes(
        LogicalPlan::RecursiveQuery(query).recompute_schema()?,
    ))
}

/// Outer references carry the type their column had when the subquery was
/// planned; narrowing literals may have changed it since (`(VALUES (1))
/// a(x)` is an integer now, a bigint then), and coercion would then skip
/// the casts a comparison or an arithmetic operator with it needs (Arrow:
/// "Invalid comparison operation: Int64 > Int32"). Each takes its column's
/// type again, where the qualified name has one type in the whole plan.
fn refresh_outer_references(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::Subquery;
    use std::collections::HashMap;
    let mut outer = false;
    plan.apply_with_subqueries(|node| {
        outer |= matches!(node, LogicalPlan::Subquery(_));
        node.apply_expressions(|e| {
            e.apply(|e| {
                outer |= matches!(e, Expr::OuterReferenceColumn(..));
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(match outer {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    })?;
    if !outer {
        return Ok(plan);
    }
    let mut types: HashMap<Column, Option<DataType>> = HashMap::new();
    plan.apply_with_subqueries(|node| {
        for (qualifier, field) in node.schema().iter() {
            let column = Column::new(qualifier.cloned(), field.name());
            types
                .entry(column)
                .and_modify(|t| {
                    if t.as_ref() != Some(field.data_type()) {
                        *t = None
                    }
                })
                .or_insert_with(|| Some(field.data_type().clone()));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let retyped = |e: Expr| -> Result<Transformed<Expr>> {
        e.transform_up(|e| match e {
            Expr::OuterReferenceColumn(field, column) => match types.get(&column) {
                Some(Some(t)) if t != field.data_type() => {
                    Ok(Transformed::yes(Expr::OuterReferenceColumn(
                        Arc::new(field.as_ref().clone().with_data_type(t.clone())),
                        column,
                    )))
                }
                _ => Ok(Transformed::no(Expr::OuterReferenceColumn(field, column))),
            },
            other => Ok(Transformed::no(other)),
        })
    };
    let retype_columns = |subquery: &mut Subquery| -> Result<()> {
        let columns = std::mem::take(&mut subquery.outer_ref_columns);
        subquery.outer_ref_columns = columns
            .into_iter()
            .map(|c| retyped(c).map(|t| t.data))
            .collect::<Result<_>>()?;
        Ok(())
    };
    Ok(plan
        .transform_up_with_subqueries(|node| {
            let node = match node {
                LogicalPlan::Subquery(mut subquery) => {
                    retype_columns(&mut subquery)?;
                    LogicalPlan::Subquery(subquery)
                }
                other => other,
            };
            node.map_expressions(|e| {
                retyped(e)?.transform_data(|e| {
                    e.transform_up(|e| match e {
                        Expr::ScalarSubquery(mut s) => {
                            retype_columns(&mut s)?;
                            Ok(Transformed::yes(Expr::ScalarSubquery(s)))
                        }
                        Expr::Exists(mut exists) => {
                            retype_columns(&mut exists.subquery)?;
                            Ok(Transformed::yes(Expr::Exists(exists)))
                        }
                        Expr::InSubquery(mut in_subquery) => {
                            retype_columns(&mut in_subquery.subquery)?;
                            Ok(Transformed::yes(Expr::InSubquery(in_subquery)))
                        }
                        other => Ok(Transformed::no(other)),
                    })
                })
            })?
            .map_data(|node| node.recompute_schema())
        })?
        .data)
}

/// A smallint shifted is a smallint: PostgreSQL shifts it as an integer
/// and keeps the low 16 bits (`1::int2 << 15` is -32768), where coercion
/// would make it an integer shift (32768). Before coercion, so that the
/// operators around it see a smallint.
fn smallint_shift(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::BitwiseShiftLeft | Operator::BitwiseShiftRight)
                && left.get_type(schema)? == DataType::Int16 =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(
                    checked_udf(Checked::SmallintShift(op)),
                    vec![*left, *right],
                ),
            )))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// A `VALUES` column of bare integer literals (and NULLs) that all fit in
/// 32 bits is an `integer` column, as in PostgreSQL. Other columns keep
/// the types DataFusion gave them: its `VALUES` schema is fixed when it is
/// built, so a type may change here only together with that schema.
fn narrow_values(values: Values) -> Result<Transformed<Values>> {
    let Values { schema, mut values } = values;
    let mut fields: Vec<_> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut changed = false;
    for (column, field) in fields.iter_mut().enumerate() {
        if field.data_type() == &DataType::Decimal128(38, 10) {
            if let Some(exact) = bare_numeric_values(&mut values, column) {
                *field = field.clone().with_data_type(exact);
                changed = true;
            }
            continue;
        }
        if field.data_type() != &DataType::Int64 {
            continue;
        }
        let narrowable = values.iter().all(|row| match &row[column] {
            Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
            Expr::Literal(value, _) => value.is_null(),
            _ => false,
        });
        if !narrowable {
            continue;
        }
        for row in values.iter_mut() {
            let cell = &mut row[column];
            *cell = match std::mem::replace(cell, Expr::Literal(ScalarValue::Null, None)) {
                Expr::Literal(ScalarValue::Int64(v), meta) => {
                    Expr::Literal(ScalarValue::Int32(v.map(|v| v as i32)), meta)
                }
                Expr::Literal(_, meta) => Expr::Literal(ScalarValue::Int32(None), meta),
                other => other,
            };
        }
        *field = field.clone().with_data_type(DataType::Int32);
        changed = true;
    }
    if !changed {
        return Ok(Transformed::no(Values { schema, values }));
    }
    let qualifiers = (0..fields.len()).map(|i| schema.qualified_field(i).0.cloned());
    let schema = DFSchema::new_with_metadata(
        qualifiers.zip(fields.into_iter().map(Arc::new)).collect(),
        schema.metadata().clone(),
    )?;
    Ok(Transformed::yes(Values {
        schema: Arc::new(schema),
        values,
    }))
}

/// A VALUES column of bare numerics (`('1.5'::numeric), ('2.25'::numeric)`)
/// takes the narrowest type that holds every row exactly, as
/// [`bare_numeric`] does for one value; None (and the rows unchanged)
/// where a row is something else.
fn bare_numeric_values(rows: &mut [Vec<Expr>], column: usize) -> Option<DataType> {
    let empty = DFSchema::empty();
    let (mut whole, mut scale) = (0i16, 0i8);
    for row in rows.iter() {
        let exact = match &row[column] {
            Expr::Cast(Cast { expr, field })
                if field.data_type() == &DataType::Decimal128(38, 10) =>
            {
                exact_numeric_type(expr, &empty)?
            }
            Expr::Literal(value, _) if value.is_null() => continue,
            _ => return None,
        };
        if let DataType::Decimal128(p, s) = exact {
            whole = whole.max(p as i16 - s as i16);
            scale = scale.max(s);
        }
    }
    let precision = (whole + scale as i16).max(1);
    if precision > 38 {
        return None;
    }
    let exact = DataType::Decimal128(precision as u8, scale);
    for row in rows.iter_mut() {
        let cell = &mut row[column];
        if let Expr::Cast(Cast { expr, .. }) =
            std::mem::replace(cell, Expr::Literal(ScalarValue::Null, None))
        {
            *cell = Expr::Cast(Cast::new(expr, exact.clone()));
        } else {
            *cell = Expr::Literal(ScalarValue::try_from(&exact).ok()?, None);
        }
    }
    Some(exact)
}

/// `CAST(x AS numeric)` without precision keeps the scale of an integer
/// or a numeric `x`, as PostgreSQL's unconstrained numeric does (7 stays
/// `7`, 1.50 stays `1.50`); DataFusion plans the bare type as (38, 10).
fn bare_numeric(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if field.data_type() != &DataType::Decimal128(38, 10) {
        return Ok(Transformed::no(expr));
    }
    // (Not a NULL or a parameter: those stay numeric(38,10).)
    let Some(to @ DataType::Decimal128(..)) = exact_numeric_type(inner, schema) else {
        return Ok(Transformed::no(expr));
    };
    let Expr::Cast(Cast { expr: inner, .. }) = expr else {
        unreachable!("matched above")
    };
    Ok(Transformed::yes(Expr::Cast(Cast::new(inner, to))))
}

/// The decimal type that holds every value of an integer or numeric
/// expression, as type coercion will resolve it. (Before coercion
/// DataFusion gives a CASE the type of its first branch: `CASE WHEN c THEN
/// 1.5 ELSE 0.01 END` would be numeric(2,1), and the cast would round 0.01
/// to 0.0.)
/// The numeric type that holds a decimal literal's text exactly, with
/// its own scale (`'1.50'` is numeric(3,2), as PostgreSQL keeps it):
/// digits, at most one point, an optional sign; no exponent.
fn decimal_literal_type(text: &str) -> Option<DataType> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.trim_start_matches('0').len();
    let precision = (whole + fraction.len()).max(1);
    (precision <= 38).then_some(DataType::Decimal128(precision as u8, fraction.len() as i8))
}

fn exact_numeric_type(expr: &Expr, schema: &DFSchema) -> Option<DataType> {
    let branches: Vec<&Expr> = match expr {
        Expr::Case(case) => case
            .when_then_expr
            .iter()
            .map(|(_, then)| then.as_ref())
            .chain(case.else_expr.as_deref())
            .collect(),
        Expr::ScalarFunction(call)
            if matches!(
                call.func.name(),
                "coalesce" | "nullif" | "greatest" | "least"
            ) =>
        {
            call.args.iter().collect()
        }
        Expr::Alias(alias) => return exact_numeric_type(&alias.expr, schema),
        Expr::Literal(ScalarValue::Utf8(Some(text)), _) => return decimal_literal_type(text),
        other => {
            return match other.get_type(schema).ok()? {
                DataType::Int8 | DataType::Int16 => Some(DataType::Decimal128(5, 0)),
                DataType::Int32 => Some(DataType::Decimal128(10, 0)),
                DataType::Int64 => Some(DataType::Decimal128(19, 0)),
                DataType::Decimal128(p, s) => Some(DataType::Decimal128(p, s)),
                DataType::Null => Some(DataType::Null),
                _ => None,
            }
        }
    };
    let (mut digits, mut scale) = (0i16, 0i8);
    for branch in branches {
        match exact_numeric_type(branch, schema)? {
            DataType::Decimal128(p, s) => {
                digits = digits.max(p as i16 - s as i16);
                scale = scale.max(s);
            }
            DataType::Null => {}
            _ => return None,
        }
    }
    if digits == 0 && scale == 0 {
        // Every branch NULL.
        return Some(DataType::Null);
    }
    let precision = (digits + scale as i16).clamp(1, 38) as u8;
    Some(DataType::Decimal128(precision, scale.min(precision as i8)))
}

/// `sum(bigint)` and `avg` of integers and numerics are numerics in
/// PostgreSQL, so they cannot overflow: the argument becomes a decimal
/// (before type coercion, so the argument's type is the query's own).
/// Averages show at least 16 decimals, as PostgreSQL shows averages of
/// moderate values: the sum runs at scale 12 or more and DataFusion's
/// decimal average adds 4.
fn numeric_aggregates(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // The type `sum`/`avg` of one argument computes in, where it is not
    // the argument's own.
    let target = |name: &str, args: &[Expr]| -> Option<DataType> {
        if args.len() != 1 {
            return None;
        }
        match (name, args[0].get_type(schema).ok()?) {
            ("sum", DataType::Int64) => Some(DataType::Decimal128(38, 0)),
            ("avg", t) if is_integer(&t) || t == DataType::Int8 => {
                Some(DataType::Decimal128(38, 12))
            }
            // At least 12 decimals, fewer where the integer digits need
            // the room (the average adds 4).
            ("avg", DataType::Decimal128(p, s)) => {
                let digits = p as i8 - s;
                Some(DataType::Decimal128(38, s.max(12.min(34 - digits))))
            }
            _ => None,
        }
    };
    let cast_argument = |args: &mut Vec<Expr>, to: DataType| {
        let arg = args.remove(0);
        args.push(Expr::Cast(Cast::new(Box::new(arg), to)));
    };
    match expr {
        Expr::AggregateFunction(mut aggregate) => {
            match target(aggregate.func.name(), &aggregate.params.args) {
                Some(to) => {
                    cast_argument(&mut aggregate.params.args, to);
                    Ok(Transformed::yes(Expr::AggregateFunction(aggregate)))
                }
                None => Ok(Transformed::no(Expr::AggregateFunction(aggregate))),
            }
        }
        // `sum(x) OVER (...)` and `avg(x) OVER (...)` alike.
        Expr::WindowFunction(mut window) => {
            let name = match &window.fun {
                datafusion::logical_expr::WindowFunctionDefinition::AggregateUDF(f) => {
                    f.name().to_string()
                }
                _ => return Ok(Transformed::no(Expr::WindowFunction(window))),
            };
            match target(&name, &window.params.args) {
                Some(to) => {
                    cast_argument(&mut window.params.args, to);
                    Ok(Transformed::yes(Expr::WindowFunction(window)))
                }
                None => Ok(Transformed::no(Expr::WindowFunction(window))),
            }
        }
        other => Ok(Transformed::no(other)),
    }
}

/// `avg` of integers and numerics as PostgreSQL computes it: rounded in
/// its last decimal (DataFusion's decimal average truncates), and for
/// wide values (bigints, numerics of 19 or more integer digits) summed in
/// 256 bits, where DataFusion's 128-bit average overflows (its sum,
/// scaled up by the 4 decimals an average adds, passes 38 digits). The
/// average runs one decimal finer than the result and is rounded to it
/// above the aggregate.
fn rounded_averages(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Aggregate(aggregate) = node else {
        return Ok(Transformed::no(node));
    };
    let input_schema = aggregate.input.schema().clone();
    // The aggregates come last in the output (after the groups and, with
    // grouping sets, their id).
    let groups = aggregate.schema.fields().len() - aggregate.aggr_expr.len();
    let mut rounded: Vec<(usize, DataType)> = Vec::new();
    let mut aggr_expr = Vec::with_capacity(aggregate.aggr_expr.len());
    for (i, expr) in aggregate.aggr_expr.iter().enumerate() {
        let (inner, alias) = match expr {
            Expr::Alias(a) => (a.expr.as_ref(), Some((a.relation.clone(), a.name.clone()))),
            e => (e, None),
        };
        // The argument as [`numeric_aggregates`] cast it: the value's own
        // integer digits and scale, and the scale it was given.
        let plan = match inner {
            Expr::AggregateFunction(f) if f.func.name() == "avg" && f.params.args.len() == 1 => {
                match (&f.params.args[0], f.params.args[0].get_type(&input_schema)) {
                    (Expr::Cast(cast), Ok(DataType::Decimal128(_, given))) => {
                        match cast.expr.get_type(&input_schema) {
                            Ok(DataType::Int16) => Some((5, 0, given)),
                            Ok(DataType::Int32) => Some((10, 0, given)),
                            Ok(DataType::Int64) => Some((19, 0, given)),
                            Ok(DataType::Decimal128(p, s)) => Some((p as i32 - s as i32, s, given)),
                            _ => None,
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((digits, own_scale, given)) = plan else {
            aggr_expr.push(expr.clone());
            continue;
        };
        // The result: the 4 decimals an average adds, as far as the
        // integer digits leave room; computed one decimal finer.
        let result = (given as i32 + 4)
            .min(38 - digits)
            .max(given as i32)
            .min(38);
        let computed = (result - 3).max(own_scale as i32);
        let wide = digits >= 19 || digits + computed + 4 + 6 > 38;
        let input_type = match wide {
            true => DataType::Decimal256(76, computed as i8),
            false => DataType::Decimal128(38, computed as i8),
        };
        let Expr::AggregateFunction(mut f) = inner.clone() else {
            unreachable!("matched above")
        };
        let Expr::Cast(cast) = f.params.args.remove(0) else {
            unreachable!("matched above")
        };
        f.params
            .args
            .push(Expr::Cast(Cast::new(cast.expr, input_type)));
        rounded.push((groups + i, DataType::Decimal128(38, result as i8)));
        let average = Expr::AggregateFunction(f);
        aggr_expr.push(match alias {
            Some((relation, name)) => average.alias_qualified(relation, name),
            None => average,
        });
    }
    if rounded.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let finer = LogicalPlan::Aggregate(datafusion::logical_expr::Aggregate::try_new(
        aggregate.input.clone(),
        aggregate.group_expr.clone(),
        aggr_expr,
    )?);
    let finer = cast_columns(finer, |i, _| {
        rounded
            .iter()
            .find(|(at, _)| *at == i)
            .map(|(_, to)| to.clone())
    })?;
    Ok(Transformed::yes(finer))
}

/// `plan` under a projection that casts the columns `to` gives a type
/// (by position), keeping their names.
fn cast_columns(
    plan: LogicalPlan,
    to: impl Fn(usize, &datafusion::arrow::datatypes::Field) -> Option<DataType>,
) -> Result<LogicalPlan> {
    let columns: Vec<Expr> = plan
        .schema()
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let column = Expr::Column(datafusion::common::Column::new(
                qualifier.cloned(),
                field.name(),
            ));
            match to(i, field) {
                Some(t) => Expr::Cast(Cast::new(Box::new(column), t))
                    .alias_qualified(qualifier.cloned(), field.name()),
                None => column,
            }
        })
        .collect();
    datafusion::logical_expr::LogicalPlanBuilder::from(plan)
        .project(columns)?
        .build()
}

/// Every union column is nullable. A rewritten branch may have become
/// nullable without the union's schema being recomputed, and DataFusion's
/// optimizer can make a branch that was proven non-null (`coalesce(f,
/// -1.25)`) look nullable to the physical planner (common subexpressions
/// hide the pattern), which then refuses the plan. Nullability is only a
/// hint for the planner; PostgreSQL's result columns carry none.
fn union_nullability(
    mut union: datafusion::logical_expr::Union,
) -> Result<datafusion::logical_expr::Union> {
    let fields = union
        .schema
        .iter()
        .map(|(qualifier, field)| {
            let field = field.as_ref().clone().with_nullable(true);
            (qualifier.cloned(), Arc::new(field))
        })
        .collect();
    union.schema = Arc::new(DFSchema::new_with_metadata(
        fields,
        union.schema.metadata().clone(),
    )?);
    Ok(union)
}

fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float32 | DataType::Float64)
}

/// A real (float4) in arithmetic with an integer or a numeric is computed
/// in double precision, as PostgreSQL's operators for the pair are
/// (`1::real / 3` is 0.3333333333333333, not 0.33333334). Comparisons are
/// left to coercion: they answer alike for all but huge integers, and a
/// cast of the column would hide it from scan pruning.
fn real_meets_integer(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return Ok(Transformed::no(expr));
    };
    let arithmetic = matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    );
    let (l, r) = (left.get_type(schema).ok(), right.get_type(schema).ok());
    let exact = |t: &Option<DataType>| {
        matches!(
            t,
            Some(DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Decimal128(..))
        )
    };
    let real = |t: &Option<DataType>| t == &Some(DataType::Float32);
    if !arithmetic || !(real(&l) && exact(&r) || exact(&l) && real(&r)) {
        return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
            left,
            op,
            right,
        })));
    }
    let double = |e: Box<Expr>| Box::new(Expr::Cast(Cast::new(e, DataType::Float64)));
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        double(left),
        op,
        double(right),
    ))))
}

/// Where a numeric meets a float (comparison, arithmetic, CASE, COALESCE),
/// PostgreSQL computes in float8 (its preferred numeric type); DataFusion
/// would convert the float to a decimal, which fails for large values.
fn float_beats_numeric(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let type_of = |e: &Expr| e.get_type(schema).ok();
    let to_float = |e: Expr| -> Expr {
        match type_of(&e) {
            Some(DataType::Decimal128(..)) => Expr::Cast(Cast::new(Box::new(e), DataType::Float64)),
            _ => e,
        }
    };
    let mixed = |types: &[Option<DataType>]| {
        types.iter().flatten().any(is_float)
            && types
                .iter()
                .flatten()
                .any(|t| matches!(t, DataType::Decimal128(..)))
    };
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if mixed(&[type_of(&left), type_of(&right)]) =>
        {
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(to_float(*left)),
                op,
                Box::new(to_float(*right)),
            ))))
        }
        Expr::Case(mut case) => {
            let mut types: Vec<_> = case
                .when_then_expr
                .iter()
                .map(|(_, t)| type_of(t))
                .collect();
            types.extend(case.else_expr.as_deref().map(type_of));
            if !mixed(&types) {
                return Ok(Transformed::no(Expr::Case(case)));
            }
            case.when_then_expr = case
                .when_then_expr
                .into_iter()
                .map(|(w, t)| (w, Box::new(to_float(*t))))
                .collect();
            case.else_expr = case.else_expr.map(|e| Box::new(to_float(*e)));
            Ok(Transformed::yes(Expr::Case(case)))
        }
        Expr::ScalarFunction(mut f)
            if matches!(f.name(), "coalesce" | "nullif" | "greatest" | "least")
                && mixed(&f.args.iter().map(type_of).collect::<Vec<_>>()) =>
        {
            f.args = f.args.into_iter().map(to_float).collect();
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// A UNION column that is a float in one branch and a numeric in another
/// is a float, as in PostgreSQL: the numeric branches are cast.
fn union_floats(mut union: datafusion::logical_expr::Union) -> Result<Transformed<LogicalPlan>> {
    let width = union.schema.fields().len();
    let floats: Vec<bool> = (0..width)
        .map(|i| {
            let types: Vec<DataType> = union
                .inputs
                .iter()
                .filter_map(|p| p.schema().fields().get(i).map(|f| f.data_type().clone()))
                .collect();
            types.iter().any(is_float)
                && types.iter().any(|t| matches!(t, DataType::Decimal128(..)))
        })
        .collect();
    if !floats.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Union(union)));
    }
    union.inputs = union
        .inputs
        .into_iter()
        .map(|input| {
            cast_columns(Arc::unwrap_or_clone(input), |i, field| {
                (floats[i] && matches!(field.data_type(), DataType::Decimal128(..)))
                    .then_some(DataType::Float64)
            })
            .map(Arc::new)
        })
        .collect::<Result<_>>()?;
    let fields: Vec<_> = union
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let field = match floats[i] {
                true => Arc::new(field.as_ref().clone().with_data_type(DataType::Float64)),
                false => field.clone(),
            };
            (qualifier.cloned(), field)
        })
        .collect();
    union.schema = Arc::new(DFSchema::new_with_metadata(
        fields,
        union.schema.metadata().clone(),
    )?);
    Ok(Transformed::yes(LogicalPlan::Union(union)))
}

/// `count(*)` as DataFusion spells it (`count(Int64(1))`) again after its
/// literal was narrowed: the optimizer answers only that spelling from a
/// table's exact row count instead of scanning (`count(1)` is the same
/// count).
fn count_star(expr: Expr) -> Transformed<Expr> {
    match expr {
        Expr::AggregateFunction(mut aggregate)
            if aggregate.func.name() == "count"
                && !aggregate.params.distinct
                && aggregate.params.filter.is_none()
                && matches!(
                    aggregate.params.args.as_slice(),
                    [Expr::Literal(ScalarValue::Int32(Some(1)), None)]
                ) =>
        {
            aggregate.params.args = vec![Expr::Literal(
                datafusion::common::utils::expr::COUNT_STAR_EXPANSION,
                None,
            )];
            Transformed::yes(Expr::AggregateFunction(aggregate))
        }
        other => Transformed::no(other),
    }
}

fn narrow_literal(expr: Expr) -> Transformed<Expr> {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) => match i32::try_from(v) {
            Ok(v) => Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v)), meta)),
            Err(_) => Transformed::no(Expr::Literal(ScalarValue::Int64(Some(v)), meta)),
        },
        Expr::Literal(ScalarValue::UInt64(Some(v)), meta) => Transformed::yes(Expr::Literal(
            ScalarValue::Decimal128(Some(i128::from(v)), 20, 0),
            meta,
        )),
        other => Transformed::no(other),
    }
}

/// Checked integer arithmetic, rounding casts to integers and a numeric
/// `sum(bigint)` (runs after type coercion).
#[derive(Debug, Default)]
pub struct IntegerArithmetic;

impl AnalyzerRule for IntegerArithmetic {
    fn name(&self) -> &str {
        "pg_integer_arithmetic"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        Ok(plan
            .transform_up_with_subqueries(|node| {
                if let LogicalPlan::Union(union) = node {
                    let union = union_nullability(union)?;
                    return Ok(Transformed::yes(LogicalPlan::Union(union)));
                }
                let sort = matches!(node, LogicalPlan::Sort(_));
                rewrite_expressions(node, |expr, schema| {
                    let expr = match sort {
                        true => sort_key(expr, schema)?,
                        false => Transformed::no(expr),
                    };
                    // Top down: an operator's operand types are read
                    // while they are still plain operators. Read from the
                    // checked functions (bottom up) they would rebuild the
                    // name of each subtree at every level, which is cubic
                    // in the depth of `((1 + 1) + 1) ...`.
                    expr.transform_data(|e| e.transform_down(|e| checked(e, schema)))?
                        .transform_data(|e| e.transform_up(|e| wide_product(e, schema)))?
                        .transform_data(|e| {
                            e.transform_up(|e| {
                                super::pg_interval_groups::span_aggregates(e, schema)
                            })
                        })
                })?
                .transform_data(rounded_averages)?
                .transform_data(super::pg_interval_groups::group_by_span)
            })?
            .data)
    }
}

/// Rewrites every expression of one plan node, keeping their names, and
/// recomputes the node's schema.
pub(crate) fn rewrite_expressions(
    node: LogicalPlan,
    mut rewrite: impl FnMut(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    if matches!(node, LogicalPlan::TableScan(_)) {
        return Ok(Transformed::no(node));
    }
    let schema = merge_schema(&node.inputs());
    let names = NamePreserver::new(&node);
    let rewritten = node
        .map_expressions(|expr| keeping_names(expr, &names, &mut |expr| rewrite(expr, &schema)))?;
    // Always recomputed: a child's column may have changed type (a
    // `sum(bigint)` below a projection) even where this node's own
    // expressions did not.
    rewritten.map_data(|plan| plan.recompute_schema())
}

/// Rewrites one of a node's expressions under its old name, so that the
/// nodes above still find it. The expressions of a grouping set
/// (`ROLLUP (x * 2)`) each keep theirs: the aggregate's fields are named
/// after them, not after the set.
pub(crate) fn keeping_names(
    expr: Expr,
    names: &NamePreserver,
    rewrite: &mut impl FnMut(Expr) -> Result<Transformed<Expr>>,
) -> Result<Transformed<Expr>> {
    use datafusion::common::tree_node::TreeNodeContainer;
    use datafusion::logical_expr::GroupingSet;
    let mut one = |expr: Expr| -> Result<Transformed<Expr>> {
        let name = names.save(&expr);
        Ok(rewrite(expr)?.update_data(|e| name.restore(e)))
    };
    match expr {
        Expr::GroupingSet(GroupingSet::Rollup(exprs)) => Ok(exprs
            .map_elements(&mut one)?
            .update_data(|e| Expr::GroupingSet(GroupingSet::Rollup(e)))),
        Expr::GroupingSet(GroupingSet::Cube(exprs)) => Ok(exprs
            .map_elements(&mut one)?
            .update_data(|e| Expr::GroupingSet(GroupingSet::Cube(e)))),
        Expr::GroupingSet(GroupingSet::GroupingSets(sets)) => Ok(sets
            .map_elements(&mut one)?
            .update_data(|e| Expr::GroupingSet(GroupingSet::GroupingSets(e)))),
        other => one(other),
    }
}

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// `=`, `<>`, `<`, `<=`, `>`, `>=` and `IS [NOT] DISTINCT FROM`.
pub(crate) fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

fn is_integer(t: &DataType) -> bool {
    matches!(t, DataType::Int16 | DataType::Int32 | DataType::Int64)
}

/// PostgreSQL sorts `-0` and `0` as equal (the next key breaks the tie);
/// Arrow's sort puts `-0` first. Adding `0.0` turns `-0` into `0` (IEEE
/// 754) and leaves NaN, the infinities and NULL as they are. Intervals
/// sort by their whole span (see [`super::pg_interval::interval_key`]).
fn sort_key(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let zero = match expr.get_type(schema)? {
        DataType::Float64 => ScalarValue::Float64(Some(0.0)),
        DataType::Float32 => ScalarValue::Float32(Some(0.0)),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            return Ok(Transformed::yes(super::pg_interval::interval_key(expr)))
        }
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(expr),
        Operator::Plus,
        Box::new(Expr::Literal(zero, None)),
    ))))
}

/// The sort keys of a window or an ordered aggregate, as [`sort_key`].
fn sort_keys(
    order_by: Vec<datafusion::logical_expr::SortExpr>,
    schema: &DFSchema,
) -> Result<Transformed<Vec<datafusion::logical_expr::SortExpr>>> {
    let mut changed = false;
    let order_by = order_by
        .into_iter()
        .map(|mut sort| {
            let key = sort_key(sort.expr, schema)?;
            changed |= key.transformed;
            sort.expr = key.data;
            Ok(sort)
        })
        .collect::<Result<_>>()?;
    Ok(match changed {
        true => Transformed::yes(order_by),
        false => Transformed::no(order_by),
    })
}

fn checked(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let type_of = |e: &Expr| e.get_type(schema).ok();
    match expr {
        Expr::WindowFunction(mut window) if !window.params.order_by.is_empty() => {
            let order_by = std::mem::take(&mut window.params.order_by);
            Ok(sort_keys(order_by, schema)?.update_data(|order_by| {
                window.params.order_by = order_by;
                Expr::WindowFunction(window)
            }))
        }
        Expr::AggregateFunction(mut aggregate) if !aggregate.params.order_by.is_empty() => {
            let order_by = std::mem::take(&mut aggregate.params.order_by);
            Ok(sort_keys(order_by, schema)?.update_data(|order_by| {
                aggregate.params.order_by = order_by;
                Expr::AggregateFunction(aggregate)
            }))
        }
        // `trunc(numeric, n)` takes its scale from a constant `n` (see
        // `pg_round`), which coercion hid behind a cast of the literal.
        Expr::ScalarFunction(mut call)
            if call.func.name() == "trunc"
                && call.args.len() == 2
                && matches!(&call.args[1], Expr::Cast(Cast { expr, .. }) if matches!(**expr, Expr::Literal(..))) =>
        {
            let Expr::Cast(Cast { expr, field }) = &call.args[1] else {
                unreachable!("matched above")
            };
            let Expr::Literal(value, _) = &**expr else {
                unreachable!("matched above")
            };
            match value.cast_to(field.data_type()) {
                Ok(value) => {
                    call.args[1] = Expr::Literal(value, None);
                    Ok(Transformed::yes(Expr::ScalarFunction(call)))
                }
                Err(_) => Ok(Transformed::no(Expr::ScalarFunction(call))),
            }
        }
        // Intervals compare by their whole span, as in PostgreSQL.
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if is_comparison(op)
                && type_of(&left) == Some(INTERVAL)
                && type_of(&right) == Some(INTERVAL) =>
        {
            Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(super::pg_interval::interval_key(*left)),
                op,
                Box::new(super::pg_interval::interval_key(*right)),
            ))))
        }
        Expr::Between(mut between)
            if type_of(&between.expr) == Some(INTERVAL)
                && type_of(&between.low) == Some(INTERVAL)
                && type_of(&between.high) == Some(INTERVAL) =>
        {
            use super::pg_interval::interval_key;
            between.expr = Box::new(interval_key(*between.expr));
            between.low = Box::new(interval_key(*between.low));
            between.high = Box::new(interval_key(*between.high));
            Ok(Transformed::yes(Expr::Between(between)))
        }
        // Text to a date or timestamp, written or added by coercion (`ts >
        // '2024-01-05 10:00'`), reads what PostgreSQL reads.
        Expr::Cast(Cast { expr: inner, field })
            if super::pg_datetime::reads(field.data_type())
                && type_of(&inner) == Some(DataType::Utf8) =>
        {
            Ok(Transformed::yes(super::pg_datetime::datetime_in(
                field.data_type(),
                *inner,
            )))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && type_of(&left).is_some_and(|t| is_integer(&t))
                && type_of(&left) == type_of(&right) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(checked_udf(Checked::Binary(op)), vec![*left, *right]),
            )))
        }
        // DataFusion's simplifier takes `x # x` for 0 and `(x # y) # x`
        // for y, also where x is NULL (PostgreSQL: NULL): a function it
        // does not look into.
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::BitwiseXor,
            right,
        }) if type_of(&left).is_some_and(|t| is_integer(&t))
            && type_of(&left) == type_of(&right) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(checked_udf(Checked::Xor), vec![*left, *right]),
            )))
        }
        // A float divided by zero is 22012 in PostgreSQL (IEEE 754's
        // infinity in Arrow).
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Divide,
            right,
        }) if type_of(&left).is_some_and(|t| t.is_floating())
            && type_of(&left) == type_of(&right) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(checked_udf(Checked::FloatDivide), vec![*left, *right]),
            )))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if op == Operator::Divide
                && matches!(type_of(&left), Some(DataType::Decimal128(..)))
                && matches!(type_of(&right), Some(DataType::Decimal128(..))) =>
        {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(checked_udf(Checked::NumericDivide), vec![*left, *right]),
            )))
        }
        Expr::Negative(inner) if type_of(&inner).is_some_and(|t| is_integer(&t)) => {
            Ok(Transformed::yes(Expr::ScalarFunction(
                ScalarFunction::new_udf(checked_udf(Checked::Negate), vec![*inner]),
            )))
        }
        Expr::Cast(Cast { expr: inner, field })
            if is_integer(field.data_type())
                && type_of(&inner).is_some_and(|t| {
                    matches!(
                        t,
                        DataType::Decimal128(..) | DataType::Float32 | DataType::Float64
                    )
                }) =>
        {
            let rounded = Expr::ScalarFunction(ScalarFunction::new_udf(
                checked_udf(Checked::RoundToInt),
                vec![*inner],
            ));
            Ok(Transformed::yes(narrow(rounded, field.data_type())))
        }
        // A narrowing integer cast stays a function: DataFusion's
        // optimizer would move a plain cast onto the constant it is
        // compared with (`CAST(i AS smallint) = 3` becomes `i = 3`) and
        // skip the 22003 PostgreSQL raises for a value out of range.
        Expr::Cast(Cast { expr: inner, field })
            if is_integer(field.data_type())
                && type_of(&inner).is_some_and(|t| {
                    is_integer(&t) && t.primitive_width() > field.data_type().primitive_width()
                }) =>
        {
            Ok(Transformed::yes(narrow(*inner, field.data_type())))
        }
        other => Ok(Transformed::no(other)),
    }
}

/// A numeric product whose digits may pass 38 and whose decimals would
/// leave fewer than 18 integer digits becomes [`numeric_multiply`]
/// (Arrow's type caps the precision at 38 and keeps every decimal: a
/// product of two averages or quotients, 16 decimals each, overflowed past
/// 10^6). Bottom up, after [`checked`], so the operands' types are those of
/// the divisions and products already rewritten below.
fn wide_product(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr {
        op: Operator::Multiply,
        left,
        right,
    }) = &expr
    else {
        return Ok(Transformed::no(expr));
    };
    // Arrow's own product where it keeps every decimal anyway (its
    // 128-bit overflow check then stands for 38 digits): TPC-H Q1's
    // `price * (1 - discount) * (1 + tax)` stays as fast as before.
    let wide = matches!(
        (left.get_type(schema), right.get_type(schema)),
        (Ok(DataType::Decimal128(p1, s1)), Ok(DataType::Decimal128(p2, s2)))
            if p1 as usize + p2 as usize + 1 > 38 && s1 + s2 > product_scale(s1, s2)
    );
    if !wide {
        return Ok(Transformed::no(expr));
    }
    let Expr::BinaryExpr(BinaryExpr { left, right, .. }) = expr else {
        unreachable!("matched above")
    };
    Ok(Transformed::yes(Expr::ScalarFunction(
        ScalarFunction::new_udf(checked_udf(Checked::NumericMultiply), vec![*left, *right]),
    )))
}

/// A bigint (or integer) made an integer or smallint, 22003 out of range.
fn narrow(expr: Expr, target: &DataType) -> Expr {
    let what = match target {
        DataType::Int16 => Checked::NarrowToInt16,
        DataType::Int32 => Checked::NarrowToInt32,
        _ => return expr,
    };
    Expr::ScalarFunction(ScalarFunction::new_udf(checked_udf(what), vec![expr]))
}

/// What a checked function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Checked {
    Binary(Operator),
    /// Numeric division as PostgreSQL rounds it (see [`numeric_divide`]).
    NumericDivide,
    /// A wide numeric product (see [`numeric_multiply`]).
    NumericMultiply,
    Negate,
    /// A numeric or float rounded to a bigint.
    RoundToInt,
    /// An integer cast to a narrower one.
    NarrowToInt16,
    NarrowToInt32,
    /// A smallint shifted by an integer, as PostgreSQL's `int2shl` and
    /// `int2shr` do it.
    SmallintShift(Operator),
    /// `#` of two integers of one type.
    Xor,
    /// `/` of two floats of one type, 22012 for a zero divisor.
    FloatDivide,
}

impl Checked {
    fn result_type(self, inputs: &[DataType]) -> DataType {
        match (self, inputs) {
            (Checked::RoundToInt, _) => DataType::Int64,
            (Checked::NarrowToInt16 | Checked::SmallintShift(_), _) => DataType::Int16,
            (Checked::NarrowToInt32, _) => DataType::Int32,
            (
                Checked::NumericDivide,
                [DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)],
            ) => DataType::Decimal128(38, division_scale(*s1, *s2)),
            (
                Checked::NumericMultiply,
                [DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)],
            ) => DataType::Decimal128(38, product_scale(*s1, *s2)),
            _ => inputs[0].clone(),
        }
    }
}

fn checked_udf(what: Checked) -> Arc<ScalarUDF> {
    let name = match what {
        Checked::Binary(Operator::Plus) => "pg_int_add",
        Checked::Binary(Operator::Minus) => "pg_int_sub",
        Checked::Binary(_) => "pg_int_mul",
        Checked::NumericDivide => "pg_numeric_div",
        Checked::NumericMultiply => "pg_numeric_mul",
        Checked::Negate => "pg_int_neg",
        Checked::RoundToInt => "pg_round_to_int",
        Checked::NarrowToInt16 => "pg_int2",
        Checked::NarrowToInt32 => "pg_int4",
        Checked::SmallintShift(Operator::BitwiseShiftLeft) => "pg_int2shl",
        Checked::SmallintShift(_) => "pg_int2shr",
        Checked::Xor => "pg_int_xor",
        Checked::FloatDivide => "pg_float_div",
    };
    let signature = Signature::new(TypeSignature::UserDefined, Volatility::Immutable);
    Arc::new(ScalarUDF::new_from_impl(CheckedFunction {
        what,
        name,
        signature,
    }))
}

#[derive(Debug)]
struct CheckedFunction {
    what: Checked,
    name: &'static str,
    signature: Signature,
}

impl PartialEq for CheckedFunction {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for CheckedFunction {}

impl Hash for CheckedFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.what.hash(state);
    }
}

/// PostgreSQL's message for an integer result out of range.
pub(crate) fn out_of_range(t: &DataType) -> DataFusionError {
    let message = match t {
        DataType::Int16 => "smallint out of range",
        DataType::Int32 => "integer out of range",
        _ => "bigint out of range",
    };
    DataFusionError::External(Box::new(QuiverError::OutOfRange(message.into())))
}

impl ScalarUDFImpl for CheckedFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.what.result_type(arg_types))
    }

    /// Always nullable, in the logical and the physical plan alike (they
    /// must agree), so that the simplifier does not fold `(a * b) IS
    /// NULL` away and skip the overflow check PostgreSQL would make.
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(datafusion::arrow::datatypes::Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }

    /// Named as the operator it replaces: `a + b`, `(- a)`.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(match self.what {
            Checked::Binary(op) => {
                format!("{} {op} {}", args[0].schema_name(), args[1].schema_name())
            }
            Checked::NumericDivide | Checked::FloatDivide => {
                format!("{} / {}", args[0].schema_name(), args[1].schema_name())
            }
            Checked::NumericMultiply => {
                format!("{} * {}", args[0].schema_name(), args[1].schema_name())
            }
            Checked::Negate => format!("(- {})", args[0].schema_name()),
            Checked::SmallintShift(op) => {
                format!("{} {op} {}", args[0].schema_name(), args[1].schema_name())
            }
            Checked::Xor => format!(
                "{} {} {}",
                args[0].schema_name(),
                Operator::BitwiseXor,
                args[1].schema_name()
            ),
            Checked::RoundToInt | Checked::NarrowToInt16 | Checked::NarrowToInt32 => {
                args[0].schema_name().to_string()
            }
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let types: Vec<DataType> = arrays.iter().map(|a| a.data_type().clone()).collect();
        let result_type = self.what.result_type(&types);
        let overflow = |e: ArrowError| match e {
            ArrowError::ArithmeticOverflow(_) => out_of_range(&result_type),
            other => DataFusionError::ArrowError(Box::new(other), None),
        };
        let out: ArrayRef = match self.what {
            Checked::Binary(Operator::Plus) => {
                numeric::add(&arrays[0], &arrays[1]).map_err(overflow)?
            }
            Checked::Binary(Operator::Minus) => {
                numeric::sub(&arrays[0], &arrays[1]).map_err(overflow)?
            }
            Checked::Binary(_) => numeric::mul(&arrays[0], &arrays[1]).map_err(overflow)?,
            Checked::Negate => numeric::neg(&arrays[0]).map_err(overflow)?,
            Checked::NumericDivide => numeric_divide(&arrays[0], &arrays[1])?,
            Checked::NumericMultiply => numeric_multiply(&arrays[0], &arrays[1])?,
            Checked::RoundToInt => round_to_int(&arrays[0])?,
            Checked::SmallintShift(op) => shift_smallints(op, &arrays[0], &arrays[1])?,
            Checked::Xor => xor(&arrays[0], &arrays[1])?,
            Checked::FloatDivide => float_divide(&arrays[0], &arrays[1])?,
            Checked::NarrowToInt16 | Checked::NarrowToInt32 => {
                let options = datafusion::arrow::compute::CastOptions {
                    safe: false,
                    ..Default::default()
                };
                datafusion::arrow::compute::cast_with_options(&arrays[0], &result_type, &options)
                    .map_err(|_| out_of_range(&result_type))?
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// `x << n` or `x >> n` of a smallint `x`: computed in 32 bits with the
/// shift count taken modulo 32 (what PostgreSQL's C shift does on the
/// machines it runs on), then the low 16 bits.
fn shift_smallints(op: Operator, x: &ArrayRef, n: &ArrayRef) -> Result<ArrayRef> {
    use datafusion::arrow::array::Int16Array;
    use datafusion::arrow::compute::binary;
    use datafusion::arrow::datatypes::{Int16Type, Int32Type};
    let n = datafusion::arrow::compute::cast(n, &DataType::Int32)?;
    let shift = |x: i16, n: i32| -> i16 {
        let n = (n & 31) as u32;
        match op {
            Operator::BitwiseShiftLeft => (i32::from(x) << n) as i16,
            _ => (i32::from(x) >> n) as i16,
        }
    };
    let out: Int16Array = binary(
        x.as_primitive::<Int16Type>(),
        n.as_primitive::<Int32Type>(),
        shift,
    )?;
    Ok(Arc::new(out))
}

/// `x / y` of two float arrays of one type: 22012 where `y` is zero and
/// `x` is not NaN (NaN / 0 is NaN), as PostgreSQL's `float8div`.
fn float_divide(x: &ArrayRef, y: &ArrayRef) -> Result<ArrayRef> {
    let as_f64 = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Float64);
    let (xs, ys) = (as_f64(x)?, as_f64(y)?);
    let (xs, ys) = (
        xs.as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
        ys.as_primitive::<datafusion::arrow::datatypes::Float64Type>(),
    );
    let by_zero = (0..xs.len())
        .any(|i| xs.is_valid(i) && ys.is_valid(i) && ys.value(i) == 0.0 && !xs.value(i).is_nan());
    if by_zero {
        return Err(DataFusionError::ArrowError(
            Box::new(ArrowError::DivideByZero),
            None,
        ));
    }
    Ok(numeric::div(x, y)?)
}

/// `x # y` of two integer arrays of one type.
fn xor(x: &ArrayRef, y: &ArrayRef) -> Result<ArrayRef> {
    use datafusion::arrow::compute::kernels::bitwise::bitwise_xor;
    use datafusion::arrow::datatypes::{Int16Type, Int32Type, Int64Type};
    Ok(match x.data_type() {
        DataType::Int16 => Arc::new(bitwise_xor(
            x.as_primitive::<Int16Type>(),
            y.as_primitive::<Int16Type>(),
        )?),
        DataType::Int32 => Arc::new(bitwise_xor(
            x.as_primitive::<Int32Type>(),
            y.as_primitive::<Int32Type>(),
        )?),
        _ => Arc::new(bitwise_xor(
            x.as_primitive::<Int64Type>(),
            y.as_primitive::<Int64Type>(),
        )?),
    })
}

/// The scale numeric division results are kept at. PostgreSQL chooses
/// it per value: at least 16 significant digits, and at least either
/// operand's scale (`select_div_scale`). An Arrow column has one scale, so
/// the quotient is rounded where PostgreSQL rounds it and kept at 16
/// decimals (or the operands' scale, if larger). Where PostgreSQL picks
/// 16 (most quotients from 1 to 9999: the dividend's leading base-10000
/// digit above the divisor's) it shows exactly as PostgreSQL shows it
/// (`10 / 4.0` is `2.5000000000000000`); where PostgreSQL picks more
/// (`2 / 3.0` has 20, and so has `5 / 5.0`) the value is rounded at 16
/// (`0.6666666666666667`); where it picks fewer (a quotient of 10000 or
/// more) the zeros after PostgreSQL's last digit show.
fn division_scale(s1: i8, s2: i8) -> i8 {
    s1.max(s2).clamp(16, 38)
}

/// PostgreSQL's base-10000 weight and first digit of `value / 10^scale`
/// (0 and 0 for zero), which `select_div_scale` compares.
fn base_10000_lead(value: i128, scale: i8) -> (i32, u128) {
    let magnitude = value.unsigned_abs();
    if magnitude == 0 {
        return (0, 0);
    }
    let digits = magnitude.ilog10() as i32 + 1;
    let exponent = digits - 1 - i32::from(scale);
    let weight = exponent.div_euclid(4);
    let shift = i32::from(scale) + 4 * weight;
    let first = if shift >= 0 {
        magnitude / 10u128.pow(shift as u32)
    } else {
        magnitude * 10u128.pow(shift.unsigned_abs())
    };
    (weight, first)
}

/// The scales of two decimal arguments of `function`.
fn decimal_scales(function: &str, l: &ArrayRef, r: &ArrayRef) -> Result<(i8, i8)> {
    match (l.data_type(), r.data_type()) {
        (DataType::Decimal128(_, s1), DataType::Decimal128(_, s2)) => Ok((*s1, *s2)),
        (a, b) => Err(DataFusionError::Internal(format!(
            "{function} of {a} and {b}"
        ))),
    }
}

/// PostgreSQL's 22003 for a numeric result past 38 digits (ours; its own
/// numerics have no such bound).
fn numeric_overflow() -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::OutOfRange(
        "value overflows numeric format".into(),
    )))
}

/// `l / r` for decimals, as PostgreSQL's numeric division computes it:
/// rounded half away from zero at the scale `select_div_scale` picks for
/// the pair of values (at most [`division_scale`]), where Arrow's
/// division truncates at four decimals past the dividend's scale
/// (`2::numeric / 3` was `0.6666`). 22012 on a zero divisor, 22003 when
/// the quotient passes 38 digits.
fn numeric_divide(l: &ArrayRef, r: &ArrayRef) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::{i256, Decimal128Type};
    let (s1, s2) = decimal_scales("pg_numeric_div", l, r)?;
    let scale = division_scale(s1, s2);
    let overflow = numeric_overflow;
    let ten = i256::from_i128(10);
    let power = |n: i32| ten.checked_pow(n as u32).ok_or_else(overflow);
    let limit = i256::from_i128(10i128.pow(38));
    let divide = |a: i128, b: i128| -> Result<i128> {
        if b == 0 {
            return Err(DataFusionError::ArrowError(
                Box::new(ArrowError::DivideByZero),
                None,
            ));
        }
        let (w1, f1) = base_10000_lead(a, s1);
        let (w2, f2) = base_10000_lead(b, s2);
        let qweight = w1 - w2 - i32::from(f1 <= f2);
        let rounds_at = (16 - 4 * qweight)
            .max(i32::from(s1.max(s2)))
            .min(i32::from(scale));
        // a / 10^s1 / (b / 10^s2) at `rounds_at` decimals.
        let shift = rounds_at + i32::from(s2) - i32::from(s1);
        let (mut num, mut den) = (i256::from_i128(a), i256::from_i128(b));
        if shift >= 0 {
            num = num.checked_mul(power(shift)?).ok_or_else(overflow)?;
        } else {
            den = den.checked_mul(power(-shift)?).ok_or_else(overflow)?;
        }
        let mut quotient = num.wrapping_div(den);
        let rest = num.wrapping_rem(den).wrapping_abs();
        if rest.wrapping_mul(i256::from_i128(2)) >= den.wrapping_abs() {
            quotient = if (num < i256::ZERO) != (den < i256::ZERO) {
                quotient.wrapping_sub(i256::ONE)
            } else {
                quotient.wrapping_add(i256::ONE)
            };
        }
        let kept = quotient
            .checked_mul(power(i32::from(scale) - rounds_at)?)
            .ok_or_else(overflow)?;
        if kept >= limit || kept <= limit.wrapping_neg() {
            return Err(overflow());
        }
        kept.to_i128().ok_or_else(overflow)
    };
    let (l, r) = (
        l.as_primitive::<Decimal128Type>(),
        r.as_primitive::<Decimal128Type>(),
    );
    let quotients: datafusion::arrow::array::Decimal128Array = l
        .iter()
        .zip(r.iter())
        .map(|pair| match pair {
            (Some(a), Some(b)) => divide(a, b).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(quotients.with_precision_and_scale(38, scale)?))
}

/// The scale of a product whose digits may pass 38: all of its decimals
/// (PostgreSQL's scale, `s1 + s2`) while that leaves 18 integer digits,
/// else 20 (or the larger operand's scale). Two quotients (16 decimals
/// each) multiply at 20 decimals, not 32 with 6 integer digits.
fn product_scale(s1: i8, s2: i8) -> i8 {
    (s1 + s2).min(20.max(s1).max(s2)).clamp(0, 38)
}

/// `l * r` for decimals whose product may need more than 38 digits: in
/// 128 bits while it fits, else 256, rounded half away from zero to
/// [`product_scale`]; 22003 when the result passes 38 digits.
fn numeric_multiply(l: &ArrayRef, r: &ArrayRef) -> Result<ArrayRef> {
    use datafusion::arrow::datatypes::{i256, Decimal128Type};
    let (s1, s2) = decimal_scales("pg_numeric_mul", l, r)?;
    let scale = product_scale(s1, s2);
    let drop = u32::try_from(s1 + s2 - scale).unwrap_or(0);
    let limit = 10i128.pow(38);
    let divisor = i256::from_i128(10).wrapping_pow(drop);
    let too_wide = || ArrowError::ArithmeticOverflow("numeric product".into());
    let multiply = |a: i128, b: i128| -> std::result::Result<i128, ArrowError> {
        let product = match a.checked_mul(b) {
            Some(p) if drop == 0 => p,
            _ => {
                let wide = i256::from_i128(a).wrapping_mul(i256::from_i128(b));
                let (whole, rest) = (wide.wrapping_div(divisor), wide.wrapping_rem(divisor));
                let rounded = if rest.wrapping_abs().wrapping_mul(i256::from_i128(2)) >= divisor {
                    if wide < i256::ZERO {
                        whole.wrapping_sub(i256::ONE)
                    } else {
                        whole.wrapping_add(i256::ONE)
                    }
                } else {
                    whole
                };
                rounded.to_i128().ok_or_else(too_wide)?
            }
        };
        if product >= limit || product <= -limit {
            return Err(too_wide());
        }
        Ok(product)
    };
    let (l, r) = (
        l.as_primitive::<Decimal128Type>(),
        r.as_primitive::<Decimal128Type>(),
    );
    let products: datafusion::arrow::array::Decimal128Array =
        datafusion::arrow::compute::kernels::arity::try_binary(l, r, multiply)
            .map_err(|_| numeric_overflow())?;
    Ok(Arc::new(products.with_precision_and_scale(38, scale)?))
}

/// Numeric rounds half away from zero, float half to even (`rint`), as
/// PostgreSQL's casts to integer do; out of bigint's range is 22003.
fn round_to_int(array: &ArrayRef) -> Result<ArrayRef> {
    let bigint = |v: f64| -> Result<i64> {
        // 2^63 is the first float past i64::MAX.
        if v.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
            return Err(out_of_range(&DataType::Int64));
        }
        Ok(v as i64)
    };
    let values: Result<Int64Array> = match array.data_type() {
        DataType::Decimal128(_, scale) => {
            let divisor = 10i128.pow(u32::try_from(*scale).unwrap_or(0));
            array
                .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let whole = v / divisor;
                        let rest = (v % divisor).abs();
                        let rounded = if rest * 2 >= divisor {
                            whole + v.signum()
                        } else {
                            whole
                        };
                        i64::try_from(rounded).map_err(|_| out_of_range(&DataType::Int64))
                    })
                    .transpose()
                })
                .collect()
        }
        DataType::Float64 => array
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .map(|v| v.map(|v| bigint(v.round_ties_even())).transpose())
            .collect(),
        DataType::Float32 => array
            .as_primitive::<datafusion::arrow::datatypes::Float32Type>()
            .iter()
            .map(|v| {
                v.map(|v| bigint(f64::from(v).round_ties_even()))
                    .transpose()
            })
            .collect(),
        other => {
            return Err(DataFusionError::Internal(format!(
                "pg_round_to_int of {other}"
            )))
        }
    };
    Ok(Arc::new(values?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decimal_literal_is_typed_with_its_own_digits_and_scale() {
        let typed = |text| decimal_literal_type(text);
        assert_eq!(typed("1.25"), Some(DataType::Decimal128(3, 2)));
        assert_eq!(typed(" -007.10 "), Some(DataType::Decimal128(3, 2)));
        assert_eq!(typed("+3."), Some(DataType::Decimal128(1, 0)));
        assert_eq!(typed(".5"), Some(DataType::Decimal128(1, 1)));
        assert_eq!(typed("0"), Some(DataType::Decimal128(1, 0)));
        for not_plain in ["", ".", "-", "1e3", "1.2.3", "abc", "NaN", "1 2"] {
            assert_eq!(typed(not_plain), None, "{not_plain:?}");
        }
        assert_eq!(typed(&"9".repeat(39)), None);
    }
}
