//! Functions that act on the calling session: `pg_notify(channel,
//! payload)` and `set_config(name, value, is_local)`. Both take effect
//! when the statement ends, as a NOTIFY and a SET would: the session
//! picks up what they recorded in its [`SessionHandle`].

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::context::SessionHandle;
use super::settings::Settings;
use crate::error::QuiverError;

/// The longest NOTIFY payload, as in PostgreSQL.
pub const MAX_PAYLOAD: usize = 7999;

#[derive(Debug, PartialEq, Eq, Hash)]
enum Kind {
    Notify,
    SetConfig,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionFunction {
    kind: Kind,
    signature: Signature,
}

pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(SessionFunction {
            kind: Kind::Notify,
            signature: Signature::any(2, Volatility::Volatile),
        }),
        ScalarUDF::new_from_impl(SessionFunction {
            kind: Kind::SetConfig,
            signature: Signature::any(3, Volatility::Volatile),
        }),
    ]
}

impl ScalarUDFImpl for SessionFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Notify => "pg_notify",
            Kind::SetConfig => "set_config",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let session = args
            .config_options
            .extensions
            .get::<SessionHandle>()
            .ok_or_else(|| {
                external(QuiverError::FeatureNotSupported(format!(
                    "{}() cannot be called here",
                    self.name()
                )))
            })?;
        let rows = args.number_rows;
        let text = |i: usize| -> DfResult<StringArray> {
            let array = args.args[i].to_array(rows)?;
            Ok(cast(&array, &DataType::Utf8)?.as_string::<i32>().clone())
        };
        let out: StringArray = match self.kind {
            Kind::Notify => {
                let (channels, payloads) = (text(0)?, text(1)?);
                let mut out = Vec::with_capacity(rows);
                for i in 0..channels.len() {
                    if channels.is_null(i) || channels.value(i).is_empty() {
                        return Err(external(QuiverError::InvalidParameterValue(
                            "channel name cannot be empty".into(),
                        )));
                    }
                    let payload = if payloads.is_null(i) {
                        ""
                    } else {
                        payloads.value(i)
                    };
                    check_payload(payload).map_err(external)?;
                    session
                        .notifies
                        .lock()
                        .push((channels.value(i).to_string(), payload.to_string()));
                    out.push(Some(""));
                }
                out.into_iter().collect()
            }
            Kind::SetConfig => {
                let (names, values) = (text(0)?, text(1)?);
                let local = cast(&args.args[2].to_array(rows)?, &DataType::Boolean)?;
                let local: &BooleanArray = local.as_boolean();
                let mut out = Vec::with_capacity(rows);
                for i in 0..names.len() {
                    if names.is_null(i) {
                        return Err(external(QuiverError::InvalidParameterValue(
                            "SET requires parameter name".into(),
                        )));
                    }
                    let (name, value) = (names.value(i), values.value(i));
                    // Checked now, so that a bad one fails the statement.
                    if !name.starts_with("datafusion.") {
                        Settings::default().set(name, value).map_err(external)?;
                    }
                    let is_local = !local.is_null(i) && local.value(i);
                    session
                        .settings
                        .lock()
                        .push((name.to_string(), value.to_string(), is_local));
                    out.push(Some(value.to_string()));
                }
                out.into_iter().collect()
            }
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// NOTIFY's payload limit (22023 past it).
pub fn check_payload(payload: &str) -> Result<(), QuiverError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(QuiverError::InvalidParameterValue(
            "payload string too long".into(),
        ));
    }
    Ok(())
}

fn external(e: QuiverError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}
