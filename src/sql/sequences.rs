//! `nextval`, `currval`, `setval` and `lastval`: the sequence functions,
//! with the per-session state PostgreSQL keeps for them (the last value
//! each sequence gave this session, and the last sequence used).
//!
//! `nextval` over a batch takes the batch's values in one call, so a COPY
//! or an INSERT ... SELECT into a SERIAL column costs one lock per batch.
//!
//! The functions are the same for every session (a column's DEFAULT
//! holds one, planned by whichever session created the table); they find
//! the calling session in the configuration it executes with
//! ([`SessionHandle`]).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use parking_lot::Mutex;

use super::catalog::{relation_oid, CatalogContext};
use super::context::SessionHandle;
use crate::engine::catalog::visible_catalog;
use crate::engine::roles::{self, AclObject};
use crate::engine::sequence::{Covered, Sequence};
use crate::engine::QualifiedName;
use crate::error::QuiverError;

/// What one session remembers of its sequence calls.
#[derive(Debug, Default)]
pub struct SequenceCalls {
    /// The last value `nextval` (or `setval`) gave each sequence here, by
    /// sequence id.
    current: Mutex<HashMap<u64, i64>>,
    /// The sequence `nextval` used last, and the value.
    last: Mutex<Option<(u64, i64)>>,
    /// The log record covering values handed out by the statement
    /// running, until it is durable.
    pending: Mutex<Option<Covered>>,
}

impl SequenceCalls {
    /// Waits until every value this session's statements took is covered
    /// by a durable log record: call before a statement's result (or its
    /// last row) goes out.
    pub async fn durable(&self) {
        let pending = self.pending.lock().take();
        if let Some(pending) = pending {
            pending.await;
        }
    }

    /// Whether there is something to wait for.
    pub fn has_pending(&self) -> bool {
        self.pending.lock().is_some()
    }

    /// DISCARD SEQUENCES / DISCARD ALL: forget currval and lastval.
    pub fn discard(&self) {
        self.current.lock().clear();
        *self.last.lock() = None;
    }

    fn cover(&self, durable: Option<Covered>) {
        if let Some(durable) = durable {
            *self.pending.lock() = Some(durable);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Next,
    Current,
    Set,
    Last,
}

/// One of the four functions.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SequenceFunction {
    kind: Kind,
    signature: Signature,
}

/// The sequence functions.
pub fn udfs() -> Vec<ScalarUDF> {
    [Kind::Next, Kind::Current, Kind::Set, Kind::Last]
        .into_iter()
        .map(|kind| {
            let signature = match kind {
                Kind::Last => Signature::nullary(Volatility::Volatile),
                Kind::Set => Signature::one_of(
                    vec![TypeSignature::Any(2), TypeSignature::Any(3)],
                    Volatility::Volatile,
                ),
                Kind::Next | Kind::Current => Signature::any(1, Volatility::Volatile),
            };
            ScalarUDF::new_from_impl(SequenceFunction { kind, signature })
        })
        .collect()
}

impl ScalarUDFImpl for SequenceFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Next => "nextval",
            Kind::Current => "currval",
            Kind::Set => "setval",
            Kind::Last => "lastval",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(session) = args.config_options.extensions.get::<SessionHandle>() else {
            return Err(external(QuiverError::FeatureNotSupported(format!(
                "{}() cannot be called here",
                self.name()
            ))));
        };
        let call = Call {
            calls: &session.sequences,
            context: &session.context,
        };
        let rows = args.number_rows;
        let out = match self.kind {
            Kind::Last => {
                let last = *call.calls.last.lock();
                let Some((id, value)) = last else {
                    return Err(external(QuiverError::NotInPrerequisiteState(
                        "lastval is not yet defined in this session".into(),
                    )));
                };
                let catalog = visible_catalog(&call.context.db, &call.context.slot);
                let Some((name, _)) = catalog.sequence_by_id(id) else {
                    return Err(external(QuiverError::NotInPrerequisiteState(
                        "lastval is not yet defined in this session".into(),
                    )));
                };
                call.check(&name, roles::SELECT | roles::USAGE)?;
                Int64Array::from(vec![value; rows])
            }
            Kind::Next => match &args.args[0] {
                // One sequence for the whole batch: its values in one call.
                ColumnarValue::Scalar(target) => {
                    if target.is_null() {
                        Int64Array::from(vec![None; rows])
                    } else {
                        let (name, sequence) = call.resolve(target)?;
                        Int64Array::from(call.next(&name, &sequence, rows)?)
                    }
                }
                ColumnarValue::Array(targets) => {
                    let mut out = Vec::with_capacity(rows);
                    for i in 0..targets.len() {
                        let target = ScalarValue::try_from_array(targets, i)?;
                        if target.is_null() {
                            out.push(None);
                            continue;
                        }
                        let (name, sequence) = call.resolve(&target)?;
                        out.push(Some(call.next(&name, &sequence, 1)?[0]));
                    }
                    Int64Array::from(out)
                }
            },
            Kind::Current | Kind::Set => {
                let arrays = args
                    .args
                    .iter()
                    .map(|a| a.to_array(rows))
                    .collect::<DfResult<Vec<ArrayRef>>>()?;
                let values = match arrays.get(1) {
                    Some(a) => Some(cast(a, &DataType::Int64)?.as_primitive().clone()),
                    None => None,
                };
                let called: Option<BooleanArray> = match arrays.get(2) {
                    Some(a) => Some(cast(a, &DataType::Boolean)?.as_boolean().clone()),
                    None => None,
                };
                let mut out = Vec::with_capacity(rows);
                for i in 0..rows {
                    let target = ScalarValue::try_from_array(&arrays[0], i)?;
                    if target.is_null() {
                        out.push(None);
                        continue;
                    }
                    let (name, sequence) = call.resolve(&target)?;
                    out.push(match &values {
                        None => Some(call.current(&name, &sequence)?),
                        Some(values) => {
                            let values: &Int64Array = values;
                            if values.is_null(i) {
                                None
                            } else {
                                let is_called =
                                    called.as_ref().is_none_or(|c| c.is_null(i) || c.value(i));
                                Some(call.set(&name, &sequence, values.value(i), is_called)?)
                            }
                        }
                    });
                }
                Int64Array::from(out)
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// A call in one session.
struct Call<'a> {
    calls: &'a SequenceCalls,
    context: &'a CatalogContext,
}

impl Call<'_> {
    fn next(&self, name: &QualifiedName, sequence: &Sequence, n: usize) -> DfResult<Vec<i64>> {
        self.check(name, roles::USAGE | roles::UPDATE)?;
        let taken = self
            .context
            .db
            .sequence_next(sequence, &name.name, n)
            .map_err(external)?;
        self.calls.cover(taken.durable);
        if let Some(last) = taken.values.last() {
            self.calls.current.lock().insert(sequence.id(), *last);
            *self.calls.last.lock() = Some((sequence.id(), *last));
        }
        Ok(taken.values)
    }

    fn current(&self, name: &QualifiedName, sequence: &Sequence) -> DfResult<i64> {
        self.check(name, roles::SELECT | roles::USAGE)?;
        self.calls
            .current
            .lock()
            .get(&sequence.id())
            .copied()
            .ok_or_else(|| {
                external(QuiverError::NotInPrerequisiteState(format!(
                    "currval of sequence \"{}\" is not yet defined in this session",
                    name.name
                )))
            })
    }

    fn set(
        &self,
        name: &QualifiedName,
        sequence: &Sequence,
        value: i64,
        is_called: bool,
    ) -> DfResult<i64> {
        self.check(name, roles::UPDATE)?;
        let durable = self
            .context
            .db
            .sequence_set(sequence, &name.name, value, is_called)
            .map_err(external)?;
        self.calls.cover(durable);
        if is_called {
            self.calls.current.lock().insert(sequence.id(), value);
        }
        Ok(value)
    }

    /// The privilege PostgreSQL asks for (any of `wanted`), on the
    /// sequence and USAGE on its schema.
    fn check(&self, name: &QualifiedName, wanted: roles::Privileges) -> DfResult<()> {
        let catalog = visible_catalog(&self.context.db, &self.context.slot);
        let identity = self.context.info.identity();
        let actor = identity.actor();
        if catalog.is_superuser(actor) {
            return Ok(());
        }
        let schema = AclObject::Schema(name.schema.clone());
        if catalog.privileges_on(actor, &schema) & roles::USAGE == 0 {
            return Err(external(QuiverError::InsufficientPrivilege(format!(
                "permission denied for schema {}",
                name.schema
            ))));
        }
        if catalog.privileges_on(actor, &AclObject::relation(name)) & wanted == 0 {
            return Err(external(QuiverError::InsufficientPrivilege(format!(
                "permission denied for sequence {}",
                name.name
            ))));
        }
        Ok(())
    }

    /// The sequence a `regclass` argument names: an oid, or a name as
    /// PostgreSQL reads one (`s`, `"S"`, `schema.s`), found on the search
    /// path.
    fn resolve(&self, target: &ScalarValue) -> DfResult<(QualifiedName, Arc<Sequence>)> {
        let catalog = visible_catalog(&self.context.db, &self.context.slot);
        let text = match target {
            ScalarValue::Int32(Some(oid)) => Some(*oid as i64),
            ScalarValue::Int64(Some(oid)) => Some(*oid),
            ScalarValue::UInt32(Some(oid)) => Some(*oid as i64),
            _ => None,
        }
        .map(|oid| {
            catalog
                .sequences()
                .find(|(n, _)| relation_oid(&n.schema, &n.name) as i64 == oid)
                .map(|(n, s)| (n, s.clone()))
                .ok_or_else(|| external(QuiverError::UndefinedTable(format!("with OID {oid}"))))
        });
        if let Some(found) = text {
            return found;
        }
        let text = match target {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => s.clone(),
            other => other.to_string(),
        };
        let parts = parse_qualified(&text).ok_or_else(|| {
            external(QuiverError::InvalidStatement(format!(
                "invalid name syntax: \"{text}\""
            )))
        })?;
        let (schema, name) = match parts.as_slice() {
            [name] => (None, name.clone()),
            [schema, name] => (Some(schema.clone()), name.clone()),
            [_, schema, name] => (Some(schema.clone()), name.clone()),
            _ => {
                return Err(external(QuiverError::InvalidStatement(format!(
                    "improper relation name (too many dotted names): {text}"
                ))))
            }
        };
        let schemas = match schema {
            Some(schema) => vec![schema],
            None => self.context.info.search_path(),
        };
        for schema in schemas {
            let qualified = QualifiedName::new(&schema, &name);
            if let Some(sequence) = catalog.sequence(&qualified) {
                return Ok((qualified, sequence.clone()));
            }
            let Some(entry) = catalog.schemas.get(&schema) else {
                continue;
            };
            if entry.has_relation(&name) {
                return Err(external(QuiverError::WrongObjectType(format!(
                    "\"{name}\" is not a sequence"
                ))));
            }
        }
        Err(external(QuiverError::UndefinedTable(name)))
    }
}

/// A possibly qualified name as `regclass` input reads it: parts separated
/// by dots, each lower-cased unless double-quoted.
pub fn parse_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == '.' {
                    break;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

fn external(e: QuiverError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::parse_qualified;

    #[test]
    fn names_read_like_regclass() {
        assert_eq!(parse_qualified("Seq").unwrap(), vec!["seq"]);
        assert_eq!(
            parse_qualified("public.\"My Seq\"").unwrap(),
            vec!["public", "My Seq"]
        );
        assert_eq!(parse_qualified("\"a\"\"b\"").unwrap(), vec!["a\"b"]);
        assert!(parse_qualified("a..b").is_none());
        assert!(parse_qualified("").is_none());
    }
}
