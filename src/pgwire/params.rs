//! Bind parameters: wire bytes (text or binary) to DataFusion scalars of the
//! types the planner inferred.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};

use crate::session::Prepared;
use crate::sql::types::{param_pg_type, uuid_text};

/// Decodes the portal's parameters. The wire type of each is the one the
/// client named in Parse or, failing that, the one we advertised.
///
/// uuid and json parameters are turned into their text form here (we keep
/// them as text); everything else is decoded by `arrow-pg`, which coerces
/// to the inferred Arrow type.
pub fn decode_parameters(portal: &Portal<Arc<Prepared>>) -> PgWireResult<ParamValues> {
    let prepared = &portal.statement.statement;
    let count = portal.parameter_len();
    if count != prepared.param_fields.len() {
        return Err(protocol_error(format!(
            "bind message supplies {count} parameters, but prepared statement requires {}",
            prepared.param_fields.len()
        )));
    }
    let mut wire_types = Vec::with_capacity(count);
    let mut values: Vec<Option<Bytes>> = Vec::with_capacity(count);
    let mut formats = Vec::with_capacity(count);
    for i in 0..count {
        let client_type = portal
            .statement
            .parameter_types
            .get(i)
            .cloned()
            .flatten()
            .filter(|t| *t != Type::UNKNOWN);
        let wire_type =
            client_type.unwrap_or_else(|| param_pg_type(prepared.param_fields[i].as_ref()));
        let binary = portal.parameter_format.is_binary(i);
        let raw = portal.parameters[i].clone();
        if matches!(wire_type, Type::UUID | Type::JSON | Type::JSONB) {
            let text = match raw {
                None => None,
                Some(bytes) => Some(Bytes::from(text_backed(&wire_type, &bytes, binary)?)),
            };
            values.push(text);
            formats.push(0);
            wire_types.push(Some(Type::TEXT));
        } else {
            // pgjdbc sends time values with a zone offset (`13:14:15+00`);
            // a time without time zone ignores it, as in Postgres.
            let raw = match (&wire_type, binary, raw) {
                (&Type::TIME, false, Some(bytes)) => Some(strip_zone(bytes)),
                (_, _, raw) => raw,
            };
            values.push(raw);
            formats.push(if binary { 1 } else { 0 });
            // Text-like types share text's wire form in both formats;
            // arrow-pg only knows text and varchar.
            let wire_type = match wire_type {
                Type::BPCHAR | Type::NAME | Type::VARCHAR => Type::TEXT,
                other => other,
            };
            wire_types.push(Some(wire_type));
        }
    }
    let mut shadow: Portal<()> = Portal::default();
    shadow.statement = Arc::new(StoredStatement::new(String::new(), (), wire_types));
    shadow.parameters = values;
    shadow.parameter_format = Format::Individual(formats);
    let inferred: Vec<Option<&DataType>> = prepared
        .param_fields
        .iter()
        .map(|f| f.as_ref().map(|f| f.data_type()))
        .collect();
    let decoded = arrow_pg::datatypes::df::deserialize_parameters(&shadow, &inferred)?;
    // arrow-pg skips NULLs of types it does not know; refuse rather than
    // shift the remaining parameters.
    if let ParamValues::List(list) = &decoded {
        if list.len() != count {
            return Err(protocol_error(format!(
                "could not decode all {count} parameters (decoded {})",
                list.len()
            )));
        }
    }
    Ok(decoded)
}

/// `13:14:15.5+05:30` -> `13:14:15.5`.
fn strip_zone(bytes: Bytes) -> Bytes {
    let text = String::from_utf8_lossy(&bytes);
    match text.rfind(['+', '-']) {
        Some(at) if at > 0 && text[..at].contains(':') => {
            Bytes::from(text[..at].trim().to_string())
        }
        _ => bytes,
    }
}

fn text_backed(ty: &Type, bytes: &[u8], binary: bool) -> PgWireResult<String> {
    let invalid = || {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "22P02".into(),
            format!("invalid binary value for type {}", ty.name()),
        )))
    };
    let bytes = match (ty, binary) {
        (&Type::UUID, true) => return uuid_text(bytes).ok_or_else(invalid),
        (&Type::JSONB, true) => match bytes.split_first() {
            Some((1, rest)) => rest,
            _ => return Err(invalid()),
        },
        _ => bytes,
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid())
}

fn protocol_error(msg: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "08P01".into(),
        msg,
    )))
}
