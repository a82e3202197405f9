//! Sequences: counters that hand out values outside transactions, as in
//! PostgreSQL (a value taken is never given back, not even by ROLLBACK).
//!
//! Durability without a commit per value: a sequence logs a position
//! ahead of the values it hands out (at least [`LOG_AHEAD`] values, or the
//! whole batch a statement asks for), and hands out values up to that
//! position without logging again. After a crash it resumes after the
//! logged position: values in between are skipped, none is handed out
//! twice. A caller must not let a value reach a client before the record
//! that covers it is durable: [`Taken::durable`] says when.

use futures::future::{BoxFuture, FutureExt, Shared};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

use super::commit::{Commit, Effect};
use super::{CommitWatch, Database, QualifiedName, SyncLevel};
use crate::error::{QuiverError, Result};

/// Values a sequence hands out before it logs its position again (what
/// PostgreSQL calls SEQ_LOG_VALS).
pub const LOG_AHEAD: u64 = 32;

/// The integer type of a sequence's values.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SequenceType {
    Smallint,
    Integer,
    Bigint,
}

impl SequenceType {
    pub fn bounds(self) -> (i64, i64) {
        match self {
            SequenceType::Smallint => (i16::MIN as i64, i16::MAX as i64),
            SequenceType::Integer => (i32::MIN as i64, i32::MAX as i64),
            SequenceType::Bigint => (i64::MIN, i64::MAX),
        }
    }

    /// The type's name as `format_type` shows it.
    pub fn name(self) -> &'static str {
        match self {
            SequenceType::Smallint => "smallint",
            SequenceType::Integer => "integer",
            SequenceType::Bigint => "bigint",
        }
    }

    /// The PostgreSQL type oid.
    pub fn oid(self) -> i32 {
        match self {
            SequenceType::Smallint => 21,
            SequenceType::Integer => 23,
            SequenceType::Bigint => 20,
        }
    }
}

/// What CREATE SEQUENCE and ALTER SEQUENCE set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceOptions {
    pub data_type: SequenceType,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
}

impl SequenceOptions {
    /// PostgreSQL's defaults for a sequence of `data_type` counting by
    /// `increment`: ascending from 1 to the type's maximum, or descending
    /// from -1 to its minimum.
    pub fn defaults(data_type: SequenceType, increment: i64) -> SequenceOptions {
        let (low, high) = data_type.bounds();
        let (min, max) = if increment > 0 { (1, high) } else { (low, -1) };
        SequenceOptions {
            data_type,
            start: if increment > 0 { min } else { max },
            increment,
            min,
            max,
            cache: 1,
            cycle: false,
        }
    }

    /// Checks the options against each other, as PostgreSQL does (22023).
    pub fn validate(&self, name: &str) -> Result<()> {
        let bad = |m: String| Err(QuiverError::InvalidParameterValue(m));
        let (low, high) = self.data_type.bounds();
        let type_name = self.data_type.name();
        if self.increment == 0 {
            return bad("INCREMENT must not be zero".into());
        }
        if self.max < low || self.max > high {
            return bad(format!(
                "MAXVALUE ({}) is out of range for sequence data type {type_name}",
                self.max
            ));
        }
        if self.min < low || self.min > high {
            return bad(format!(
                "MINVALUE ({}) is out of range for sequence data type {type_name}",
                self.min
            ));
        }
        if self.min >= self.max {
            return bad(format!(
                "MINVALUE ({}) must be less than MAXVALUE ({})",
                self.min, self.max
            ));
        }
        if self.start < self.min {
            return bad(format!(
                "START value ({}) cannot be less than MINVALUE ({})",
                self.start, self.min
            ));
        }
        if self.start > self.max {
            return bad(format!(
                "START value ({}) cannot be greater than MAXVALUE ({})",
                self.start, self.max
            ));
        }
        if self.cache < 1 {
            return bad(format!(
                "CACHE ({}) must be greater than zero (sequence \"{name}\")",
                self.cache
            ));
        }
        Ok(())
    }
}

/// A sequence as logged and checkpointed: its definition and the state
/// to resume from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceDef {
    pub id: u64,
    pub schema: String,
    pub name: String,
    pub options: SequenceOptions,
    /// The table and column (in the same schema) whose sequence this is:
    /// it goes when they go (SERIAL, identity columns, OWNED BY).
    pub owned_by: Option<(String, String)>,
    /// The last value handed out (or logged ahead), and whether it was
    /// handed out (false: the next `nextval` returns it).
    pub last_value: i64,
    pub is_called: bool,
}

/// The durability of the record that covers a value handed out.
pub type Covered = Shared<BoxFuture<'static, ()>>;

/// What a log append returns: a future that resolves when it is durable
/// (None: nothing to wait for).
pub type Logged = Option<BoxFuture<'static, ()>>;

#[derive(Debug)]
struct State {
    options: SequenceOptions,
    owned_by: Option<(String, String)>,
    last_value: i64,
    is_called: bool,
    /// The state recovery would restore: the last logged one.
    logged: (i64, bool),
    /// Values that can still be handed out without logging again.
    budget: u64,
    /// Until it resolves: the record that covers the values handed out.
    covered: Option<Covered>,
}

/// A sequence. Shared by every version of the catalog it is in: its
/// state is not transactional.
#[derive(Debug)]
pub struct Sequence {
    id: u64,
    state: Mutex<State>,
    /// Whether the sequence is in the committed catalog (one created by
    /// an open transaction logs nothing until that commits; its commit
    /// records the state it reached).
    committed: AtomicBool,
}

/// Values handed out by one call.
pub struct Taken {
    pub values: Vec<i64>,
    /// Resolves when the record covering them is durable.
    pub durable: Option<Covered>,
}

impl Sequence {
    pub fn new(def: &SequenceDef) -> Sequence {
        Sequence {
            id: def.id,
            state: Mutex::new(State {
                options: def.options.clone(),
                owned_by: def.owned_by.clone(),
                last_value: def.last_value,
                is_called: def.is_called,
                logged: (def.last_value, def.is_called),
                budget: 0,
                covered: None,
            }),
            committed: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn options(&self) -> SequenceOptions {
        self.state.lock().options.clone()
    }

    pub fn owned_by(&self) -> Option<(String, String)> {
        self.state.lock().owned_by.clone()
    }

    /// The last value and whether it was handed out (`SELECT * FROM s`).
    pub fn current(&self) -> (i64, bool) {
        let state = self.state.lock();
        (state.last_value, state.is_called)
    }

    /// The definition with the state recovery would restore (for a
    /// checkpoint), or the live state (for the commit that creates it).
    pub fn def(&self, schema: &str, name: &str, live: bool) -> SequenceDef {
        let state = self.state.lock();
        let (last_value, is_called) = if live {
            (state.last_value, state.is_called)
        } else {
            state.logged
        };
        SequenceDef {
            id: self.id,
            schema: schema.to_string(),
            name: name.to_string(),
            options: state.options.clone(),
            owned_by: state.owned_by.clone(),
            last_value,
            is_called,
        }
    }

    /// The commit that creates the sequence logs its state as it is now:
    /// from here on, that is what recovery (and a checkpoint) starts from.
    pub fn log_current(&self) -> (i64, bool) {
        let mut state = self.state.lock();
        state.logged = (state.last_value, state.is_called);
        state.budget = 0;
        state.logged
    }

    pub fn is_committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }

    pub fn mark_committed(&self) {
        self.committed.store(true, Ordering::Release);
    }

    /// Hands out `n` values. `log(last_value)` appends the record of a new
    /// position (called with the lock held, so records are in order).
    pub fn next(
        &self,
        name: &str,
        n: usize,
        log: impl FnOnce(i64) -> Result<Logged>,
    ) -> Result<Taken> {
        let mut state = self.state.lock();
        let mut values = Vec::with_capacity(n);
        let (mut last, mut called) = (state.last_value, state.is_called);
        for _ in 0..n {
            let value = step(&state.options, last, called)
                .ok_or_else(|| limit_reached(name, &state.options))?;
            values.push(value);
            (last, called) = (value, true);
        }
        state.last_value = last;
        state.is_called = called;
        if self.is_committed() {
            if state.budget >= n as u64 {
                state.budget -= n as u64;
            } else {
                // Log a position ahead: as far as this batch again, at
                // least LOG_AHEAD values, stopping at a bound that does not
                // cycle.
                let ahead = (n as u64).max(LOG_AHEAD).max(state.options.cache as u64);
                let mut position = last;
                let mut budget = 0;
                while budget < ahead {
                    match step(&state.options, position, true) {
                        Some(v) => position = v,
                        None => break,
                    }
                    budget += 1;
                }
                let logged = log(position)?;
                state.logged = (position, true);
                state.budget = budget;
                state.covered = logged.map(|f| f.shared());
            }
        }
        if let Some(covered) = &state.covered {
            if covered.peek().is_some() {
                state.covered = None;
            }
        }
        Ok(Taken {
            values,
            durable: state.covered.clone(),
        })
    }

    /// setval and ALTER SEQUENCE RESTART: the state becomes `(value,
    /// is_called)`, logged by `log` (with the lock held).
    pub fn set(
        &self,
        name: &str,
        value: i64,
        is_called: bool,
        log: impl FnOnce() -> Result<Logged>,
    ) -> Result<Option<Covered>> {
        let mut state = self.state.lock();
        if value < state.options.min || value > state.options.max {
            return Err(QuiverError::OutOfRange(format!(
                "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                state.options.min, state.options.max
            )));
        }
        state.last_value = value;
        state.is_called = is_called;
        self.relog(&mut state, |_, _| log())
    }

    /// ALTER SEQUENCE: new options (and owner); `restart` sets the next
    /// value.
    pub fn alter(
        &self,
        options: SequenceOptions,
        owned_by: Option<(String, String)>,
        restart: Option<i64>,
        log: impl FnOnce(i64, bool) -> Result<Logged>,
    ) -> Result<Option<Covered>> {
        let mut state = self.state.lock();
        if let Some(value) = restart {
            state.last_value = value;
            state.is_called = false;
        }
        state.options = options;
        state.owned_by = owned_by;
        self.relog(&mut state, log)
    }

    /// Logs the state as it now is (the lock held).
    fn relog(
        &self,
        state: &mut State,
        log: impl FnOnce(i64, bool) -> Result<Logged>,
    ) -> Result<Option<Covered>> {
        state.budget = 0;
        state.logged = (state.last_value, state.is_called);
        if self.is_committed() {
            state.covered = log(state.last_value, state.is_called)?.map(|f| f.shared());
        }
        Ok(state.covered.clone())
    }

    /// Recovery: the state a logged record gives.
    pub fn restore(&self, last_value: i64, is_called: bool) {
        let mut state = self.state.lock();
        state.last_value = last_value;
        state.is_called = is_called;
        state.logged = (last_value, is_called);
        state.budget = 0;
    }

    /// Recovery: a logged ALTER SEQUENCE.
    pub fn restore_def(&self, def: &SequenceDef) {
        self.state.lock().options = def.options.clone();
        self.state.lock().owned_by = def.owned_by.clone();
        self.restore(def.last_value, def.is_called);
    }

    /// The sequence as a one-row table (`SELECT last_value FROM s`), as
    /// PostgreSQL shows it: `log_cnt` is how many values remain before
    /// the next log record.
    pub fn as_table(&self) -> datafusion::error::Result<datafusion::datasource::MemTable> {
        use datafusion::arrow::array::{BooleanArray, Int64Array};
        use datafusion::arrow::record_batch::RecordBatch;
        let state = self.state.lock();
        let schema = table_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(Int64Array::from(vec![state.last_value])),
                std::sync::Arc::new(Int64Array::from(vec![state.budget as i64])),
                std::sync::Arc::new(BooleanArray::from(vec![state.is_called])),
            ],
        )?;
        datafusion::datasource::MemTable::try_new(schema, vec![vec![batch]])
    }

    /// Recovery and ALTER TABLE RENAME: the owning table has a new name.
    pub fn set_owner_table(&self, table: &str) {
        let mut state = self.state.lock();
        if let Some((owner, _)) = &mut state.owned_by {
            *owner = table.to_string();
        }
    }
}

/// The columns a sequence reads as.
pub fn table_schema() -> datafusion::arrow::datatypes::SchemaRef {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("last_value", DataType::Int64, false),
        Field::new("log_cnt", DataType::Int64, false),
        Field::new("is_called", DataType::Boolean, false),
    ]))
}

/// The value after `last` (or `last` itself when it was not handed out),
/// None at a bound the sequence does not cycle past.
fn step(options: &SequenceOptions, last: i64, called: bool) -> Option<i64> {
    if !called {
        return Some(last);
    }
    let next = last.checked_add(options.increment);
    match next {
        Some(v) if v >= options.min && v <= options.max => Some(v),
        _ if options.cycle => Some(if options.increment > 0 {
            options.min
        } else {
            options.max
        }),
        _ => None,
    }
}

fn limit_reached(name: &str, options: &SequenceOptions) -> QuiverError {
    let (which, bound) = if options.increment > 0 {
        ("maximum", options.max)
    } else {
        ("minimum", options.min)
    };
    QuiverError::SequenceLimit(format!(
        "nextval: reached {which} value of sequence \"{name}\" ({bound})"
    ))
}

/// Sequence operations that log.
impl Database {
    /// nextval: `n` values of `seq` (named `name`, for errors).
    pub fn sequence_next(&self, seq: &Sequence, name: &str, n: usize) -> Result<Taken> {
        if seq.is_committed() {
            self.check_writable()?;
        }
        // Before the sequence's lock: a checkpoint takes the gate, then
        // reads the sequence.
        let _gate = self.commit_gate.read();
        seq.next(name, n, |position| {
            self.log_sequence(Effect::SetSequence {
                id: seq.id(),
                last_value: position,
                is_called: true,
            })
        })
    }

    /// setval.
    pub fn sequence_set(
        &self,
        seq: &Sequence,
        name: &str,
        value: i64,
        is_called: bool,
    ) -> Result<Option<Covered>> {
        if seq.is_committed() {
            self.check_writable()?;
        }
        let _gate = self.commit_gate.read();
        seq.set(name, value, is_called, || {
            self.log_sequence(Effect::SetSequence {
                id: seq.id(),
                last_value: value,
                is_called,
            })
        })
    }

    /// ALTER SEQUENCE: takes effect at once and is not undone by ROLLBACK
    /// (like nextval and setval).
    pub fn alter_sequence(
        &self,
        name: &QualifiedName,
        seq: &Sequence,
        options: SequenceOptions,
        owned_by: Option<(String, String)>,
        restart: Option<i64>,
    ) -> Result<Option<Covered>> {
        self.check_writable()?;
        options.validate(&name.name)?;
        let _gate = self.commit_gate.read();
        let def_options = options.clone();
        let def_owner = owned_by.clone();
        let covered = seq.alter(options, owned_by, restart, |last_value, is_called| {
            self.log_sequence(Effect::AlterSequence(SequenceDef {
                id: seq.id(),
                schema: name.schema.clone(),
                name: name.name.clone(),
                options: def_options,
                owned_by: def_owner,
                last_value,
                is_called,
            }))
        })?;
        self.invalidate_plans();
        Ok(covered)
    }

    /// A sequence's record waits for the local disk at most, never for
    /// synchronous replicas (as in PostgreSQL, where nextval assigns no
    /// transaction): a commit that uses the value comes later in the WAL,
    /// so a replica that has the commit has the record. Nor does it make
    /// the statement a committed one that a cancel can no longer stop.
    fn log_sequence(&self, effect: Effect) -> Result<Logged> {
        let sync = CommitWatch::statement_sync_level().min(SyncLevel::Local);
        Ok(self
            .log_record(&Commit::of(effect), sync)?
            .0
            .map(|durable| durable.wait().boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(options: SequenceOptions) -> SequenceDef {
        SequenceDef {
            id: 1,
            schema: "public".into(),
            name: "s".into(),
            last_value: options.start,
            is_called: false,
            options,
            owned_by: None,
        }
    }

    #[test]
    fn values_count_up_and_log_ahead() {
        let seq = Sequence::new(&def(SequenceOptions::defaults(SequenceType::Bigint, 1)));
        seq.mark_committed();
        let mut logged = Vec::new();
        let taken = seq
            .next("s", 3, |p| {
                logged.push(p);
                Ok(None)
            })
            .unwrap();
        assert_eq!(taken.values, vec![1, 2, 3]);
        assert_eq!(logged, vec![3 + LOG_AHEAD as i64]);
        // Within the logged window: nothing more is logged.
        let taken = seq.next("s", 10, |_| panic!("logged again")).unwrap();
        assert_eq!(taken.values[0], 4);
        assert_eq!(seq.def("public", "s", false).last_value, 35);
    }

    #[test]
    fn a_bound_stops_or_cycles() {
        let mut options = SequenceOptions::defaults(SequenceType::Integer, 1);
        options.max = 2;
        let seq = Sequence::new(&def(options.clone()));
        assert_eq!(seq.next("s", 2, |_| Ok(None)).unwrap().values, vec![1, 2]);
        let err = seq.next("s", 1, |_| Ok(None)).err().unwrap();
        assert_eq!(
            err.to_string(),
            "nextval: reached maximum value of sequence \"s\" (2)"
        );
        options.cycle = true;
        let seq = Sequence::new(&def(options));
        assert_eq!(
            seq.next("s", 5, |_| Ok(None)).unwrap().values,
            vec![1, 2, 1, 2, 1]
        );
    }

    #[test]
    fn descending_defaults_and_validation() {
        let options = SequenceOptions::defaults(SequenceType::Smallint, -1);
        assert_eq!((options.min, options.max, options.start), (-32768, -1, -1));
        let mut bad = SequenceOptions::defaults(SequenceType::Integer, 1);
        bad.start = 0;
        assert!(bad.validate("s").is_err());
    }
}
