//! QuiverDB errors as gRPC statuses, in one place (as `pgwire` has its
//! ErrorResponse): the gRPC code a client library acts on, a message that
//! ends with the SQLSTATE, and the details (SQLSTATE, message, detail,
//! hint) as JSON in the status details and in `x-quiver-sqlstate`
//! metadata, for programs that want the code itself.

use tonic::{Code, Status};

use crate::error::QuiverError;
use crate::server::Refusal;

/// The metadata key that carries the SQLSTATE of an error.
pub const SQLSTATE_KEY: &str = "x-quiver-sqlstate";

/// The status for an error a statement raised.
pub fn status(e: &QuiverError) -> Status {
    with_sqlstate(
        e.sqlstate().code(),
        &e.to_string(),
        e.detail().as_deref(),
        e.hint().as_deref(),
    )
}

/// The status for a refused login.
pub fn refused(refusal: &Refusal) -> Status {
    with_sqlstate(refusal.code, &refusal.message, None, None)
}

/// A status with an SQLSTATE that no QuiverError carries (a protocol
/// misuse the Flight front end itself finds).
pub fn with_sqlstate(
    sqlstate: &str,
    message: &str,
    detail: Option<&str>,
    hint: Option<&str>,
) -> Status {
    let details = serde_json::json!({
        "sqlstate": sqlstate,
        "message": message,
        "detail": detail,
        "hint": hint,
    });
    let mut text = format!("{message} (SQLSTATE {sqlstate})");
    if let Some(detail) = detail {
        text.push_str(&format!("\nDETAIL: {detail}"));
    }
    if let Some(hint) = hint {
        text.push_str(&format!("\nHINT: {hint}"));
    }
    let mut status = Status::with_details(code(sqlstate), text, details.to_string().into());
    if let Ok(value) = sqlstate.parse() {
        status.metadata_mut().insert(SQLSTATE_KEY, value);
    }
    status
}

/// The gRPC code for an SQLSTATE: what a client should do about it.
fn code(sqlstate: &str) -> Code {
    match sqlstate {
        "57014" => Code::Cancelled,
        "42501" => Code::PermissionDenied,
        "42P01" | "42703" | "42883" | "42704" | "3F000" | "3D000" | "34000" | "58P01" => {
            Code::NotFound
        }
        "42P07" | "42P06" | "42701" | "42710" | "23505" | "42P03" => Code::AlreadyExists,
        "40001" | "40P01" => Code::Aborted,
        "0A000" => Code::Unimplemented,
        "XX001" => Code::DataLoss,
        _ => match &sqlstate[..2.min(sqlstate.len())] {
            "28" => Code::Unauthenticated,
            "42" | "22" | "23" | "21" | "2B" | "3B" | "26" => Code::InvalidArgument,
            "25" | "55" => Code::FailedPrecondition,
            "53" | "54" => Code::ResourceExhausted,
            "08" | "57" => Code::Unavailable,
            "XX" | "58" => Code::Internal,
            _ => Code::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_sqlstate_and_get_the_matching_code() {
        let s = status(&QuiverError::UndefinedTable("nope".into()));
        assert_eq!(s.code(), Code::NotFound);
        assert!(s.message().ends_with("(SQLSTATE 42P01)"), "{}", s.message());
        assert_eq!(s.metadata().get(SQLSTATE_KEY).unwrap(), "42P01");
        let details: serde_json::Value = serde_json::from_slice(s.details()).unwrap();
        assert_eq!(details["sqlstate"], "42P01");
        assert_eq!(status(&QuiverError::QueryCanceled).code(), Code::Cancelled);
        assert_eq!(
            status(&QuiverError::SerializationFailure("x".into())).code(),
            Code::Aborted
        );
        assert_eq!(
            with_sqlstate("28P01", "no", None, None).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            with_sqlstate("22012", "zero", None, None).code(),
            Code::InvalidArgument
        );
    }
}
