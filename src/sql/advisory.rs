//! The advisory lock functions: `pg_advisory_lock`, `pg_try_advisory_lock`,
//! `pg_advisory_unlock`, their `_shared` and `_xact_` forms, and
//! `pg_advisory_unlock_all`, over the engine's lock table.
//!
//! A lock that must be waited for is waited for on the thread that runs
//! the statement, given up to the runtime meanwhile (other statements go
//! on), and the wait ends with 57014 when the statement is cancelled or
//! times out.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::context::SessionHandle;
use crate::engine::advisory::{Holder, LockKey};
use crate::error::QuiverError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    /// Wait for the lock.
    Lock,
    /// Take it if free: true when taken.
    Try,
    /// Release one hold: true when there was one.
    Unlock,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AdvisoryFunction {
    name: &'static str,
    action: Action,
    shared: bool,
    transaction: bool,
    signature: Signature,
}

/// Every advisory lock function.
pub fn udfs() -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    for (name, action, shared, transaction) in [
        ("pg_advisory_lock", Action::Lock, false, false),
        ("pg_advisory_lock_shared", Action::Lock, true, false),
        ("pg_try_advisory_lock", Action::Try, false, false),
        ("pg_try_advisory_lock_shared", Action::Try, true, false),
        ("pg_advisory_unlock", Action::Unlock, false, false),
        ("pg_advisory_unlock_shared", Action::Unlock, true, false),
        ("pg_advisory_xact_lock", Action::Lock, false, true),
        ("pg_advisory_xact_lock_shared", Action::Lock, true, true),
        ("pg_try_advisory_xact_lock", Action::Try, false, true),
        ("pg_try_advisory_xact_lock_shared", Action::Try, true, true),
    ] {
        out.push(ScalarUDF::new_from_impl(AdvisoryFunction {
            name,
            action,
            shared,
            transaction,
            // A key is a bigint, or two integers (`$1` is typed as the
            // first form says); other integer types are taken too.
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Int64]),
                    TypeSignature::Exact(vec![DataType::Int32, DataType::Int32]),
                    TypeSignature::Numeric(1),
                    TypeSignature::Numeric(2),
                ],
                Volatility::Volatile,
            ),
        }));
    }
    out.push(ScalarUDF::new_from_impl(UnlockAll(Signature::nullary(
        Volatility::Volatile,
    ))));
    out
}

impl ScalarUDFImpl for AdvisoryFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        // The lock functions return void: shown as an empty value.
        Ok(match self.action {
            Action::Lock => DataType::Utf8,
            Action::Try | Action::Unlock => DataType::Boolean,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let session = session_of(&args, self.name)?;
        let rows = args.number_rows;
        let keys = keys(&args.args, rows)?;
        let holder = Holder {
            session: session.context.info.id,
            pid: session.context.info.identity().pid,
            transaction: self.transaction,
        };
        let locks = session.context.db.advisory();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(key) = key else {
                out.push(None);
                continue;
            };
            out.push(Some(match self.action {
                Action::Lock => {
                    let stopped = session.stop_check();
                    let waited = match tokio::runtime::Handle::try_current() {
                        Ok(handle)
                            if handle.runtime_flavor()
                                == tokio::runtime::RuntimeFlavor::MultiThread =>
                        {
                            tokio::task::block_in_place(|| {
                                locks.lock(key, holder, self.shared, stopped)
                            })
                        }
                        _ => locks.lock(key, holder, self.shared, stopped),
                    };
                    if waited.is_err() {
                        return Err(DataFusionError::External(Box::new(
                            QuiverError::QueryCanceled,
                        )));
                    }
                    true
                }
                Action::Try => locks.try_lock(key, holder, self.shared),
                Action::Unlock => {
                    let released = locks.unlock(key, holder, self.shared);
                    if !released {
                        let mode = if self.shared {
                            "ShareLock"
                        } else {
                            "ExclusiveLock"
                        };
                        tracing::debug!("you don't own a lock of type {mode}");
                    }
                    released
                }
            }));
        }
        Ok(ColumnarValue::Array(match self.action {
            Action::Lock => Arc::new(
                out.iter()
                    .map(|taken| taken.map(|_| ""))
                    .collect::<StringArray>(),
            ) as ArrayRef,
            _ => Arc::new(out.into_iter().collect::<BooleanArray>()),
        }))
    }
}

/// `pg_advisory_unlock_all()`: every session-level lock of the session.
#[derive(Debug, PartialEq, Eq, Hash)]
struct UnlockAll(Signature);

impl ScalarUDFImpl for UnlockAll {
    fn name(&self) -> &str {
        "pg_advisory_unlock_all"
    }

    fn signature(&self) -> &Signature {
        &self.0
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let session = session_of(&args, "pg_advisory_unlock_all")?;
        session.context.db.advisory().unlock_all(Holder {
            session: session.context.info.id,
            pid: session.context.info.identity().pid,
            transaction: false,
        });
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(vec![
            "";
            args.number_rows
        ]))))
    }
}

pub(super) fn session_of<'a>(
    args: &'a ScalarFunctionArgs,
    name: &str,
) -> DfResult<&'a SessionHandle> {
    args.config_options
        .extensions
        .get::<SessionHandle>()
        .ok_or_else(|| {
            DataFusionError::External(Box::new(QuiverError::FeatureNotSupported(format!(
                "{name}() cannot be called here"
            ))))
        })
}

/// The key of each row: one bigint, or two integers.
fn keys(args: &[ColumnarValue], rows: usize) -> DfResult<Vec<Option<LockKey>>> {
    let arrays = args
        .iter()
        .map(|a| a.to_array(rows))
        .collect::<DfResult<Vec<_>>>()?;
    match arrays.as_slice() {
        [single] => {
            let values = cast(single, &DataType::Int64)?;
            let values = values.as_primitive::<Int64Type>();
            Ok((0..values.len())
                .map(|i| (!values.is_null(i)).then(|| LockKey::single(values.value(i))))
                .collect())
        }
        [high, low] => {
            let high = cast(high, &DataType::Int32)?;
            let low = cast(low, &DataType::Int32)?;
            let (high, low) = (
                high.as_primitive::<Int32Type>(),
                low.as_primitive::<Int32Type>(),
            );
            Ok((0..high.len())
                .map(|i| {
                    (!high.is_null(i) && !low.is_null(i))
                        .then(|| LockKey::pair(high.value(i), low.value(i)))
                })
                .collect())
        }
        _ => Err(DataFusionError::Plan(
            "an advisory lock takes one bigint key or two integer keys".into(),
        )),
    }
}
