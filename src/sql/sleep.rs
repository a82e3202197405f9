//! `pg_sleep(seconds)`: waits on the thread that runs the statement, given
//! up to the runtime meanwhile (other statements go on), and stops with
//! 57014 when the statement is cancelled or times out, as PostgreSQL's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::advisory::session_of;
use crate::error::QuiverError;

/// How often a sleep looks whether its statement was stopped.
const CHECK_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sleep(Signature);

pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Sleep(Signature::uniform(
        1,
        vec![DataType::Float64],
        Volatility::Volatile,
    )))
}

impl ScalarUDFImpl for Sleep {
    fn name(&self) -> &str {
        "pg_sleep"
    }

    fn signature(&self) -> &Signature {
        &self.0
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let session = session_of(&args, "pg_sleep")?;
        let rows = args.number_rows;
        let seconds = cast(&args.args[0].to_array(rows)?, &DataType::Float64)?;
        let seconds = seconds.as_primitive::<Float64Type>();
        let stopped = session.stop_check();
        for i in 0..seconds.len() {
            if seconds.is_null(i) {
                continue;
            }
            // Negative and NaN sleep not at all; a century is forever.
            let wanted = seconds.value(i);
            let wanted = match wanted > 0.0 {
                true => Duration::from_secs_f64(wanted.min(3.2e9)),
                false => Duration::ZERO,
            };
            let slept = match tokio::runtime::Handle::try_current() {
                Ok(handle)
                    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread =>
                {
                    tokio::task::block_in_place(|| sleep(wanted, &stopped))
                }
                _ => sleep(wanted, &stopped),
            };
            if !slept {
                return Err(DataFusionError::External(Box::new(
                    QuiverError::QueryCanceled,
                )));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(vec![
            "";
            rows
        ]))))
    }
}

/// Sleeps for `wanted`; false when `stopped` said to stop first.
fn sleep(wanted: Duration, stopped: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + wanted;
    loop {
        if stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(CHECK_EVERY.min(until - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_ends_when_told_to_stop() {
        let started = Instant::now();
        assert!(sleep(Duration::from_millis(30), &|| false));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let started = Instant::now();
        assert!(!sleep(Duration::from_secs(60), &|| true));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
