//! Join ordering by estimated cardinality. DataFusion 55 joins tables in
//! the order of the FROM list; this rule takes each chain of inner
//! equi-joins, estimates how many rows every connected subset of its
//! inputs produces (row counts and column bounds from the tables' zone
//! maps, textbook selectivities for filters) and picks the join tree with
//! the fewest intermediate rows by dynamic programming over the subsets,
//! never joining two sets that share no join condition. Chains of more
//! than [`MAX_INPUTS`] inputs (up to [`MAX_GREEDY`]) are ordered greedily:
//! the connected pair whose join gives the fewest rows first, and so on.
//!
//! The rule only ever reorders inner joins whose conditions are equalities
//! between the two sides plus filters, which is always correct; it keeps the
//! original tree unless the estimate of the new one is clearly lower, and
//! leaves chains of more than [`MAX_GREEDY`] inputs alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction_owned;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Join, JoinConstraint, JoinType, LogicalPlan, Operator,
    Projection,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::engine::table::Table;

/// Chains with up to this many inputs are ordered by dynamic programming
/// over their subsets.
const MAX_INPUTS: usize = 10;

/// Chains with more inputs keep the FROM order (a [`Set`] has 32 bits).
const MAX_GREEDY: usize = 32;

/// A new order must be estimated at least this much cheaper.
const GAIN: f64 = 0.8;

#[derive(Debug, Default)]
pub struct JoinOrder;

impl OptimizerRule for JoinOrder {
    fn name(&self) -> &str {
        "quiver_join_order"
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    /// Off with `datafusion.optimizer.join_reordering = false`, which also
    /// keeps DataFusion from swapping join inputs: the query's own order.
    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !config.options().optimizer.join_reordering {
            return Ok(Transformed::no(plan));
        }
        optimize(plan)
    }
}

fn optimize(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if let LogicalPlan::Join(join) = &plan {
        if reorderable(join) {
            let mut chain = Chain::default();
            chain.collect(&plan);
            if chain.leaves.len() > 2 && chain.leaves.len() <= MAX_GREEDY {
                let mut leaves = Vec::with_capacity(chain.leaves.len());
                for leaf in std::mem::take(&mut chain.leaves) {
                    leaves.push(optimize(leaf)?.data);
                }
                chain.leaves = leaves;
                // A chain the rule cannot rebuild keeps its order: the
                // rule only ever makes a plan faster, never an error.
                if let Ok(Some(reordered)) = chain.reorder(&plan) {
                    return Ok(Transformed::yes(reordered));
                }
            }
        }
    }
    plan.map_children(optimize)
}

/// The inner join a plan is, seen through projections that only pick
/// columns (DataFusion puts them between joins to drop columns early).
fn inner_join(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(join) if reorderable(join) => Some(join),
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            inner_join(&p.input)
        }
        _ => None,
    }
}

fn reorderable(join: &Join) -> bool {
    join.join_type == JoinType::Inner
        && join.join_constraint == JoinConstraint::On
        && join.null_equality == NullEquality::NullEqualsNothing
        && !join.null_aware
        && !join.on.is_empty()
}

/// A tree of inner joins flattened: its inputs, its equality conditions
/// and its other conditions.
#[derive(Default)]
struct Chain {
    leaves: Vec<LogicalPlan>,
    on: Vec<(Expr, Expr)>,
    filters: Vec<Expr>,
}

/// A set of a chain's inputs, as bits.
type Set = u32;

struct Edge {
    left: Expr,
    right: Expr,
    sides: (usize, usize),
    /// The equivalence class (see [`Class`]) the edge belongs to, when
    /// the rule estimates and joins it through its class.
    class: Option<usize>,
}

/// Columns of a chain equal to each other through its equalities, as
/// DuckDB's equivalence sets: `c_nationkey = s_nationkey` and
/// `s_nationkey = n_nationkey` put customer, supplier and nation in one
/// class, so customer may meet nation directly (Q5 joins the five nations of
/// ASIA to customer before orders and lineitem). Only classes over three
/// or more inputs whose edges are all single-column joins of their pair are
/// used: a composite key (lineitem to partsupp on part and supplier) is
/// estimated as one, as before.
struct Class {
    /// Each input of the class with its column, by input.
    members: Vec<(usize, Expr)>,
}

/// What building the chosen tree needs to know.
#[derive(Clone, Copy)]
struct Shape<'a> {
    best: &'a HashMap<Set, Best>,
    edges: &'a [Edge],
    filters: &'a [(Expr, Set)],
    /// The columns the chain's output has.
    output: &'a HashSet<Column>,
}

struct Best {
    cost: f64,
    rows: f64,
    /// The split that joins this set (None for a single input).
    split: Option<(Set, Set)>,
}

impl Chain {
    fn collect(&mut self, plan: &LogicalPlan) {
        match inner_join(plan) {
            Some(join) => {
                self.collect(&join.left);
                self.collect(&join.right);
                self.on.extend(join.on.iter().cloned());
                if let Some(filter) = &join.filter {
                    self.filters.extend(split_conjunction_owned(filter.clone()));
                }
            }
            None => self.leaves.push(plan.clone()),
        }
    }

    /// The inputs an expression reads, or None when it reads none.
    fn inputs_of(&self, expr: &Expr) -> Option<Set> {
        let mut set: Set = 0;
        for column in expr.column_refs() {
            let i = self
                .leaves
                .iter()
                .position(|leaf| leaf.schema().has_column(column))?;
            set |= 1 << i;
        }
        (set != 0).then_some(set)
    }

    /// The reordered tree, or None to keep `original`.
    fn reorder(&self, original: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        let n = self.leaves.len();
        let mut edges = Vec::with_capacity(self.on.len());
        for (left, right) in &self.on {
            let (Some(l), Some(r)) = (self.inputs_of(left), self.inputs_of(right)) else {
                return Ok(None);
            };
            if l.count_ones() != 1 || r.count_ones() != 1 || l == r {
                return Ok(None);
            }
            edges.push(Edge {
                left: left.clone(),
                right: right.clone(),
                sides: (l.trailing_zeros() as usize, r.trailing_zeros() as usize),
                class: None,
            });
        }
        let type_of =
            |input: usize, column: &Expr| column.get_type(self.leaves[input].schema()).ok();
        let classes = equivalence_classes(&mut edges, &type_of);
        let mut filters = Vec::with_capacity(self.filters.len());
        for filter in &self.filters {
            let Some(set) = self.inputs_of(filter) else {
                return Ok(None);
            };
            filters.push((filter.clone(), set));
        }

        let estimates: Vec<Estimate> = self.leaves.iter().map(estimate).collect();
        // Per class, the share each pair of its members keeps (estimated
        // once: a distinct count samples the table).
        let class_pairs: Vec<HashMap<(usize, usize), f64>> = classes
            .iter()
            .map(|class| {
                let mut pairs = HashMap::new();
                for (x, (a, left)) in class.members.iter().enumerate() {
                    for (b, right) in &class.members[x + 1..] {
                        let s = join_selectivity(&estimates[*a], &[left], &estimates[*b], &[right]);
                        pairs.insert((*a, *b), s);
                    }
                }
                pairs
            })
            .collect();
        // Per pair of inputs with conditions between them, the share of
        // their cross product the conditions keep (all of them at once:
        // the columns of a composite key are not independent).
        type Keys<'e> = (Vec<&'e Expr>, Vec<&'e Expr>);
        let mut pairs: HashMap<(usize, usize), Keys> = HashMap::new();
        for edge in edges.iter().filter(|e| e.class.is_none()) {
            let (a, b) = edge.sides;
            let (key, left, right) = if a < b {
                ((a, b), &edge.left, &edge.right)
            } else {
                ((b, a), &edge.right, &edge.left)
            };
            let entry = pairs.entry(key).or_default();
            entry.0.push(left);
            entry.1.push(right);
        }
        let selectivity: Vec<((usize, usize), f64)> = pairs
            .into_iter()
            .map(|((a, b), (left, right))| {
                let s = join_selectivity(&estimates[a], &left, &estimates[b], &right);
                ((a, b), s)
            })
            .collect();
        let rows_of = |set: Set| -> f64 {
            let mut rows: f64 = (0..n)
                .filter(|i| set & (1 << i) != 0)
                .map(|i| estimates[i].rows)
                .product();
            for ((a, b), s) in &selectivity {
                if set & (1 << a) != 0 && set & (1 << b) != 0 {
                    rows *= s;
                }
            }
            // A class's members in the set are equal on one key: one
            // factor per member after the first, not one per pair.
            for (class, pairs) in classes.iter().zip(&class_pairs) {
                let present: Vec<usize> = class
                    .members
                    .iter()
                    .map(|(i, _)| *i)
                    .filter(|i| set & (1 << i) != 0)
                    .collect();
                for pair in present.windows(2) {
                    rows *= pairs[&(pair[0], pair[1])];
                }
            }
            rows.max(1.0)
        };
        let connects = |a: Set, b: Set| {
            edges.iter().any(|e| {
                let (l, r) = (1 << e.sides.0, 1 << e.sides.1);
                (a & l != 0 && b & r != 0) || (a & r != 0 && b & l != 0)
            })
        };

        // Dynamic programming over connected subsets, in increasing order
        // (every subset of a set is a smaller number).
        let full: Set = Set::MAX >> (Set::BITS as usize - n);
        let mut best: HashMap<Set, Best> = HashMap::new();
        for (i, estimate) in estimates.iter().enumerate() {
            best.insert(
                1 << i,
                Best {
                    cost: 0.0,
                    rows: estimate.rows.max(1.0),
                    split: None,
                },
            );
        }
        if n > MAX_INPUTS {
            greedy(&mut best, n, &rows_of, &connects);
        }
        let exhaustive = if n <= MAX_INPUTS { full } else { 0 };
        for set in 1..=exhaustive {
            if set.count_ones() < 2 {
                continue;
            }
            let rows = rows_of(set);
            let mut found: Option<Best> = None;
            // Every split into two non-empty halves, each once.
            let mut left = (set - 1) & set;
            while left > 0 {
                let right = set & !left;
                if left < right {
                    if let (Some(a), Some(b)) = (best.get(&left), best.get(&right)) {
                        if connects(left, right) {
                            let cost = a.cost + b.cost + rows;
                            if found.as_ref().is_none_or(|f| cost < f.cost) {
                                found = Some(Best {
                                    cost,
                                    rows,
                                    split: Some((left, right)),
                                });
                            }
                        }
                    }
                }
                left = (left - 1) & set;
            }
            if let Some(found) = found {
                best.insert(set, found);
            }
        }
        let Some(chosen) = best.get(&full) else {
            // Not connected: a cross product somewhere; leave it.
            return Ok(None);
        };
        let current = self.cost_of(original, &rows_of);
        let cheaper = chosen.cost < current * GAIN;
        if !cheaper {
            return Ok(None);
        }
        let mut used = vec![false; filters.len()];
        let output: HashSet<Column> = original.schema().columns().into_iter().collect();
        let shape = Shape {
            best: &best,
            edges: &edges,
            filters: &filters,
            output: &output,
        };
        let tree = self.build(full, &shape, &mut used)?;
        if used.iter().any(|u| !u) {
            return Ok(None);
        }
        // The original column order.
        let columns: Vec<Expr> = original
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        Ok(Some(LogicalPlan::Projection(Projection::try_new(
            columns,
            Arc::new(tree),
        )?)))
    }

    /// The estimated cost of the tree as it stands (the sum of its joins'
    /// rows), with the same estimates.
    fn cost_of(&self, plan: &LogicalPlan, rows_of: &dyn Fn(Set) -> f64) -> f64 {
        /// Leaves come in the order [`Chain::collect`] met them.
        fn walk(plan: &LogicalPlan, next: &mut usize, rows_of: &dyn Fn(Set) -> f64) -> (Set, f64) {
            match inner_join(plan) {
                Some(join) => {
                    let (a, ca) = walk(&join.left, next, rows_of);
                    let (b, cb) = walk(&join.right, next, rows_of);
                    (a | b, ca + cb + rows_of(a | b))
                }
                None => {
                    *next += 1;
                    (1 << (*next - 1), 0.0)
                }
            }
        }
        walk(plan, &mut 0, rows_of).1
    }

    fn build(&self, set: Set, shape: &Shape, used: &mut [bool]) -> Result<LogicalPlan> {
        let Shape {
            best,
            edges,
            filters,
            output,
        } = *shape;
        let Some((left, right)) = best[&set].split else {
            return Ok(self.leaves[set.trailing_zeros() as usize].clone());
        };
        // The larger side first: DataFusion then builds its hash table on
        // the smaller one, which its own rule may still swap.
        let (left, right) = if best[&left].rows >= best[&right].rows {
            (left, right)
        } else {
            (right, left)
        };
        let l = self.build(left, shape, used)?;
        let r = self.build(right, shape, used)?;
        let mut on = Vec::new();
        let mut joined_classes = HashSet::new();
        for edge in edges {
            let (a, b) = (1 << edge.sides.0, 1 << edge.sides.1);
            let crosses = (left & a != 0 && right & b != 0) || (left & b != 0 && right & a != 0);
            // One equality per class is enough: the others follow.
            if !crosses || edge.class.is_some_and(|c| !joined_classes.insert(c)) {
                continue;
            }
            if left & a != 0 {
                on.push((edge.left.clone(), edge.right.clone()));
            } else {
                on.push((edge.right.clone(), edge.left.clone()));
            }
        }
        let mut here = Vec::new();
        for (i, (filter, needs)) in filters.iter().enumerate() {
            if !used[i] && needs & !set == 0 {
                used[i] = true;
                here.push(filter.clone());
            }
        }
        let filter = here.into_iter().reduce(Expr::and);
        let join = LogicalPlan::Join(Join::try_new(
            Arc::new(l),
            Arc::new(r),
            on,
            filter,
            JoinType::Inner,
            JoinConstraint::On,
            NullEquality::NullEqualsNothing,
            false,
        )?);
        // Only the columns still needed above: the output's, and those of
        // conditions that join this set to the rest.
        let mut needed: HashSet<Column> = output.clone();
        for edge in edges {
            let (a, b) = (1 << edge.sides.0, 1 << edge.sides.1);
            if (set & a != 0) != (set & b != 0) {
                needed.extend(edge.left.column_refs().into_iter().cloned());
                needed.extend(edge.right.column_refs().into_iter().cloned());
            }
        }
        for (filter, needs) in filters {
            if needs & !set != 0 {
                needed.extend(filter.column_refs().into_iter().cloned());
            }
        }
        let columns: Vec<Column> = join.schema().columns();
        if columns.iter().all(|c| needed.contains(c)) {
            return Ok(join);
        }
        let kept: Vec<Expr> = columns
            .into_iter()
            .filter(|c| needed.contains(c))
            .map(Expr::Column)
            .collect();
        Ok(LogicalPlan::Projection(Projection::try_new(
            kept,
            Arc::new(join),
        )?))
    }
}

/// Orders a chain too long for the exhaustive search: starting from its
/// inputs, repeatedly joins the two connected sets whose join gives the
/// fewest rows, recording each join in `best` as the search would.
fn greedy(
    best: &mut HashMap<Set, Best>,
    n: usize,
    rows_of: &dyn Fn(Set) -> f64,
    connects: &dyn Fn(Set, Set) -> bool,
) {
    let mut sets: Vec<Set> = (0..n).map(|i| 1 << i).collect();
    while sets.len() > 1 {
        let mut pick: Option<(usize, usize, f64)> = None;
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                if !connects(sets[i], sets[j]) {
                    continue;
                }
                let rows = rows_of(sets[i] | sets[j]);
                if pick.is_none_or(|(_, _, r)| rows < r) {
                    pick = Some((i, j, rows));
                }
            }
        }
        // Not connected: a cross product somewhere; the caller keeps the
        // query's order.
        let Some((i, j, rows)) = pick else { return };
        let (a, b) = (sets[i], sets[j]);
        let cost = best[&a].cost + best[&b].cost + rows;
        best.insert(
            a | b,
            Best {
                cost,
                rows,
                split: Some((a, b)),
            },
        );
        sets.swap_remove(j);
        sets[i] = a | b;
    }
}

/// Finds the [`Class`]es of a chain's single-column equalities, marks
/// their edges, and adds an edge between every two members that have none
/// (marked too), so the search may join any two of them.
fn equivalence_classes(
    edges: &mut Vec<Edge>,
    type_of: &dyn Fn(usize, &Expr) -> Option<DataType>,
) -> Vec<Class> {
    // Union-find over the columns of column-to-column edges.
    let mut columns: Vec<(usize, Expr)> = Vec::new();
    let mut parent: Vec<usize> = Vec::new();
    fn id(
        input: usize,
        column: &Expr,
        columns: &mut Vec<(usize, Expr)>,
        parent: &mut Vec<usize>,
    ) -> usize {
        match columns.iter().position(|(i, c)| *i == input && c == column) {
            Some(at) => at,
            None => {
                columns.push((input, column.clone()));
                parent.push(parent.len());
                parent.len() - 1
            }
        }
    }
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut edge_columns = Vec::with_capacity(edges.len());
    for edge in edges.iter() {
        if !matches!(edge.left, Expr::Column(_)) || !matches!(edge.right, Expr::Column(_)) {
            edge_columns.push(None);
            continue;
        }
        let a = id(edge.sides.0, &edge.left, &mut columns, &mut parent);
        let b = id(edge.sides.1, &edge.right, &mut columns, &mut parent);
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        parent[ra] = rb;
        edge_columns.push(Some(a));
    }
    // Pairs of inputs joined on more than one condition: a composite key.
    let mut conditions: HashMap<(usize, usize), usize> = HashMap::new();
    for edge in edges.iter() {
        let (a, b) = edge.sides;
        *conditions.entry((a.min(b), a.max(b))).or_default() += 1;
    }
    let mut classes = Vec::new();
    let roots: Vec<usize> = (0..columns.len()).map(|c| root(&mut parent, c)).collect();
    let mut seen = HashSet::new();
    for &r in &roots {
        if !seen.insert(r) {
            continue;
        }
        let members: Vec<(usize, Expr)> = (0..columns.len())
            .filter(|&c| roots[c] == r)
            .map(|c| columns[c].clone())
            .collect();
        let inputs: HashSet<usize> = members.iter().map(|(i, _)| *i).collect();
        // Three inputs or more, one column each, every edge of the class
        // the only condition between its two inputs.
        let class_edges: Vec<usize> = (0..edge_columns.len())
            .filter(|&e| edge_columns[e].is_some_and(|c| roots[c] == r))
            .collect();
        // (One type throughout, so that any two members compare as they
        // are: the equalities the rule adds have no casts.)
        let first_type = type_of(members[0].0, &members[0].1);
        let usable = inputs.len() >= 3
            && inputs.len() == members.len()
            && first_type.is_some()
            && members.iter().all(|(i, c)| type_of(*i, c) == first_type)
            && class_edges.iter().all(|&e| {
                let (a, b) = edges[e].sides;
                conditions[&(a.min(b), a.max(b))] == 1
            });
        if !usable {
            continue;
        }
        let class = classes.len();
        for &e in &class_edges {
            edges[e].class = Some(class);
        }
        let mut members = members;
        members.sort_by_key(|(i, _)| *i);
        for (x, (a, left)) in members.iter().enumerate() {
            for (b, right) in &members[x + 1..] {
                let joined = edges.iter().any(|e| {
                    e.class == Some(class) && (e.sides == (*a, *b) || e.sides == (*b, *a))
                });
                if !joined {
                    edges.push(Edge {
                        left: left.clone(),
                        right: right.clone(),
                        sides: (*a, *b),
                        class: Some(class),
                    });
                }
            }
        }
        classes.push(Class { members });
    }
    classes
}

/// What is known of an input: its estimated rows, and where its columns
/// come from.
struct Estimate<'a> {
    rows: f64,
    plan: &'a LogicalPlan,
}

fn estimate(plan: &LogicalPlan) -> Estimate<'_> {
    Estimate {
        rows: rows(plan),
        plan,
    }
}

/// Rows a table scan reads, when the table is one of ours.
fn table_rows(plan: &LogicalPlan) -> Option<f64> {
    let LogicalPlan::TableScan(scan) = plan else {
        return None;
    };
    let provider = source_as_provider(&scan.source).ok()?;
    let table = provider.downcast_ref::<Table>()?;
    Some(table.pin().row_count as f64)
}

/// Estimated output rows of a plan.
fn rows(plan: &LogicalPlan) -> f64 {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let base = table_rows(plan).unwrap_or(1000.0);
            let mut rows = base;
            for filter in &scan.filters {
                rows *= filter_selectivity(plan, filter);
            }
            match scan.fetch {
                Some(fetch) => rows.min(fetch as f64),
                None => rows,
            }
        }
        LogicalPlan::Filter(filter) => {
            let input = rows(&filter.input);
            let mut out = input;
            for conjunct in split_conjunction_owned(filter.predicate.clone()) {
                out *= filter_selectivity(&filter.input, &conjunct);
            }
            out
        }
        LogicalPlan::Projection(p) => rows(&p.input),
        LogicalPlan::SubqueryAlias(a) => rows(&a.input),
        LogicalPlan::Sort(s) => match s.fetch {
            Some(fetch) => rows(&s.input).min(fetch as f64),
            None => rows(&s.input),
        },
        LogicalPlan::Limit(l) => match l.get_fetch_type() {
            Ok(datafusion::logical_expr::logical_plan::FetchType::Literal(Some(n))) => {
                rows(&l.input).min(n as f64)
            }
            _ => rows(&l.input),
        },
        LogicalPlan::Aggregate(a) => {
            if a.group_expr.is_empty() {
                1.0
            } else {
                // Grouped by the key of a table: one row per key.
                let input = rows(&a.input);
                let groups: Option<f64> = a
                    .group_expr
                    .iter()
                    .map(|g| match g {
                        Expr::Column(c) => ndv(&a.input, c),
                        _ => None,
                    })
                    .try_fold(1.0, |acc, n| n.map(|n| acc * n));
                groups.map_or(input / 10.0, |g| g.min(input))
            }
        }
        LogicalPlan::Join(j) => match j.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => rows(&j.left) * 0.5,
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => rows(&j.right) * 0.5,
            JoinType::Left => rows(&j.left),
            JoinType::Right => rows(&j.right),
            _ => rows(&j.left).max(rows(&j.right)),
        },
        LogicalPlan::Distinct(d) => rows(d.input()) / 2.0,
        other => other
            .inputs()
            .into_iter()
            .map(rows)
            .fold(1000.0_f64, |a, b| a.max(b)),
    }
}

/// The table and column a plan's column is read from, through aliases,
/// filters and plain projections.
fn base_column(
    plan: &LogicalPlan,
    column: &Column,
) -> Option<(Arc<crate::engine::table::TableVersion>, usize, f64)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source).ok()?;
            let table = provider.downcast_ref::<Table>()?;
            let index = provider.schema().index_of(&column.name).ok()?;
            let version = table.snapshot();
            let rows = version.row_count as f64;
            Some((version, index, rows))
        }
        LogicalPlan::SubqueryAlias(a) => {
            let i = a.schema.index_of_column(column).ok()?;
            let (qualifier, field) = a.input.schema().qualified_field(i);
            base_column(&a.input, &Column::new(qualifier.cloned(), field.name()))
        }
        LogicalPlan::Filter(f) => base_column(&f.input, column),
        LogicalPlan::Projection(p) => {
            let i = p.schema.index_of_column(column).ok()?;
            match p.expr.get(i)?.clone().unalias() {
                Expr::Column(c) => base_column(&p.input, &c),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Distinct values of a column of its table, estimated: for integers and
/// dates their range (bounded by the rows), for other types a sample.
fn ndv(plan: &LogicalPlan, column: &Column) -> Option<f64> {
    let (version, index, rows) = base_column(plan, column)?;
    let by_range =
        version
            .column_bounds(index)
            .and_then(|(lo, hi)| match (as_number(&lo), as_number(&hi)) {
                (Some(lo), Some(hi)) if hi >= lo => Some((hi - lo + 1.0).min(rows)),
                _ => None,
            });
    by_range
        .or_else(|| version.estimate_distinct(index))
        .map(|n| n.max(1.0))
}

fn as_number(value: &ScalarValue) -> Option<f64> {
    match value {
        ScalarValue::Int8(Some(v)) => Some(*v as f64),
        ScalarValue::Int16(Some(v)) => Some(*v as f64),
        ScalarValue::Int32(Some(v)) => Some(*v as f64),
        ScalarValue::Int64(Some(v)) => Some(*v as f64),
        ScalarValue::UInt8(Some(v)) => Some(*v as f64),
        ScalarValue::UInt16(Some(v)) => Some(*v as f64),
        ScalarValue::UInt32(Some(v)) => Some(*v as f64),
        ScalarValue::UInt64(Some(v)) => Some(*v as f64),
        ScalarValue::Date32(Some(v)) => Some(*v as f64),
        _ => None,
    }
}

/// Distinct keys of one side of a join, and whether they are a key of its
/// table (as many distinct values as the table has rows).
fn key_distinct(e: &Estimate, keys: &[&Expr]) -> (f64, bool) {
    let mut product = 1.0;
    let mut table_rows: f64 = 0.0;
    for key in keys {
        let Expr::Column(column) = key else {
            return (e.rows.max(1.0), false);
        };
        let Some((_, _, rows)) = base_column(e.plan, column) else {
            return (e.rows.max(1.0), false);
        };
        table_rows = table_rows.max(rows);
        product *= ndv(e.plan, column).unwrap_or(rows);
    }
    let distinct = product.min(table_rows).max(1.0);
    (distinct, distinct >= table_rows)
}

/// Share of the cross product of two inputs that `left = right` (column
/// lists) keeps. Where one side's keys are a key of its table, each row of
/// the other side is taken to find one match (a foreign key): 1 / that
/// side's distinct keys; otherwise 1 / the larger number of distinct keys.
fn join_selectivity(a: &Estimate, left: &[&Expr], b: &Estimate, right: &[&Expr]) -> f64 {
    let (na, unique_a) = key_distinct(a, left);
    let (nb, unique_b) = key_distinct(b, right);
    let distinct = match (unique_a, unique_b) {
        (true, true) => na.min(nb),
        (true, false) => na,
        (false, true) => nb,
        (false, false) => na.max(nb),
    };
    1.0 / distinct
}

/// Share of rows a filter keeps, estimated.
fn filter_selectivity(plan: &LogicalPlan, filter: &Expr) -> f64 {
    let column_of = |e: &Expr| match e {
        Expr::Column(c) => Some(c.clone()),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(c) => Some(c.clone()),
            _ => None,
        },
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => filter_selectivity(plan, left) * filter_selectivity(plan, right),
            Operator::Or => {
                (filter_selectivity(plan, left) + filter_selectivity(plan, right)).min(1.0)
            }
            Operator::Eq => {
                let column = column_of(left).or_else(|| column_of(right));
                match column.and_then(|c| ndv(plan, &c)) {
                    Some(n) => 1.0 / n,
                    None => 0.1,
                }
            }
            Operator::NotEq => 0.9,
            Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => 1.0 / 3.0,
            _ => 0.5,
        },
        Expr::Between(_) => 0.25,
        Expr::InList(list) if !list.negated => {
            let per = match column_of(&list.expr).and_then(|c| ndv(plan, &c)) {
                Some(n) => 1.0 / n,
                None => 0.1,
            };
            (per * list.list.len() as f64).min(1.0)
        }
        Expr::Like(_) | Expr::SimilarTo(_) => 0.1,
        Expr::Not(inner) => 1.0 - filter_selectivity(plan, inner),
        Expr::IsNull(_) => 0.1,
        Expr::IsNotNull(_) => 0.9,
        _ => 0.5,
    }
}
