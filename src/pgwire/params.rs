//! Bind parameters: wire bytes (text or binary) to DataFusion scalars of the
//! types the planner inferred.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::Type;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use postgres_types::Kind;

use crate::engine::conform::plain_numeric;
use crate::engine::types::{
    array_item, element_field, TaggedType, PG_ELEMENT_TYPE_KEY, PG_TYPE_KEY,
};
use crate::session::{column_from_text, Prepared};
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
    // Arrays we decode ourselves (arrow-pg reads only some element types,
    // and text arrays by splitting at commas): (position, value).
    let mut arrays = Vec::new();
    // Numbers the client sent as another kind of number than the one
    // expected (psycopg sends a Python int as int2/int4/int8 for `amount
    // > %s`, a Decimal as numeric for `int_col = %s`): decoded as sent,
    // then converted here exactly. arrow-pg converts only between integer
    // and float types, and truncated a numeric for an integer (`5.5` was
    // `5`). (position, decoded type).
    let mut numbers: Vec<(usize, DataType)> = Vec::new();
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
        let inferred = prepared.param_fields[i].as_deref();
        if let Some(list_field) = array_parameter(&wire_type, inferred) {
            let value = match &raw {
                None => ScalarValue::try_from(list_field.data_type()).map_err(invalid_array)?,
                Some(bytes) => decode_array(&list_field, &wire_type, bytes, binary)?,
            };
            arrays.push((i, value));
            // A placeholder for arrow-pg, replaced below.
            values.push(None);
            formats.push(0);
            wire_types.push(Some(Type::TEXT));
        } else if matches!(wire_type, Type::UUID | Type::JSON | Type::JSONB) {
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
                // Python's Decimal prints `1E+2` and `0E-8`; arrow-pg reads
                // only plain digits.
                (&Type::NUMERIC, false, Some(bytes)) => Some(plain_numeric_bytes(bytes)),
                (_, _, raw) => raw,
            };
            let expected = prepared.param_fields[i].as_deref().map(|f| f.data_type());
            let numeric = matches!(expected, Some(DataType::Decimal128(..)));
            let integer = matches!(
                expected,
                Some(DataType::Int16 | DataType::Int32 | DataType::Int64)
            );
            let sent = match wire_type {
                Type::INT2 if numeric => Some(DataType::Int16),
                Type::INT4 if numeric => Some(DataType::Int32),
                Type::INT8 if numeric => Some(DataType::Int64),
                Type::FLOAT4 if numeric || integer => Some(DataType::Float32),
                Type::FLOAT8 if numeric || integer => Some(DataType::Float64),
                // 20 integer digits (a bigint's 19) and 18 decimals.
                Type::NUMERIC if integer => Some(DataType::Decimal128(38, 18)),
                _ => None,
            };
            numbers.extend(sent.map(|t| (i, t)));
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
    let mut inferred: Vec<Option<&DataType>> = prepared
        .param_fields
        .iter()
        .map(|f| f.as_ref().map(|f| f.data_type()))
        .collect();
    for (i, sent) in &numbers {
        inferred[*i] = Some(sent);
    }
    let mut decoded = arrow_pg::datatypes::df::deserialize_parameters(&shadow, &inferred)?;
    if let ParamValues::List(list) = &mut decoded {
        for (i, value) in arrays {
            if let Some(slot) = list.get_mut(i) {
                *slot = value.into();
            }
        }
        for (i, _) in numbers {
            let target = prepared.param_fields[i].as_deref().map(|f| f.data_type());
            if let (Some(slot), Some(target)) = (list.get_mut(i), target) {
                let value = numeric_parameter(i, slot.value.clone(), target)?;
                *slot = value.into();
            }
        }
    }
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

/// The list type an array parameter is read as: the type the statement
/// expects where it is a list, else the client's array type. None: not an
/// array parameter.
fn array_parameter(wire_type: &Type, inferred: Option<&Field>) -> Option<Field> {
    match inferred {
        Some(field) if matches!(field.data_type(), DataType::List(_)) => Some(field.clone()),
        Some(field) if !matches!(field.data_type(), DataType::Null) => None,
        _ => {
            let Kind::Array(member) = wire_type.kind() else {
                return None;
            };
            let element = wire_element(member)?;
            let mut field = Field::new(
                "",
                DataType::List(Arc::new(array_item(element.data_type().clone()))),
                true,
            );
            if let Some(tag) = TaggedType::of(&element) {
                field = field.with_metadata(
                    [(PG_ELEMENT_TYPE_KEY.to_string(), tag.name().to_string())].into(),
                );
            }
            Some(field)
        }
    }
}

/// The Arrow field of an array parameter's element type.
fn wire_element(member: &Type) -> Option<Field> {
    let tagged = |tag: TaggedType| {
        Field::new("", DataType::Utf8, true)
            .with_metadata([(PG_TYPE_KEY.to_string(), tag.name().to_string())].into())
    };
    let plain = |data_type: DataType| Field::new("", data_type, true);
    Some(match *member {
        Type::BOOL => plain(DataType::Boolean),
        Type::INT2 => plain(DataType::Int16),
        Type::INT4 | Type::OID => plain(DataType::Int32),
        Type::INT8 => plain(DataType::Int64),
        Type::FLOAT4 => plain(DataType::Float32),
        Type::FLOAT8 => plain(DataType::Float64),
        Type::NUMERIC => plain(DataType::Decimal128(38, 10)),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            plain(DataType::Utf8)
        }
        Type::DATE => plain(DataType::Date32),
        Type::TIME => plain(DataType::Time64(TimeUnit::Microsecond)),
        Type::TIMESTAMP => plain(DataType::Timestamp(TimeUnit::Microsecond, None)),
        Type::TIMESTAMPTZ => plain(DataType::Timestamp(
            TimeUnit::Microsecond,
            Some(crate::engine::types::UTC.into()),
        )),
        Type::BYTEA => plain(DataType::Binary),
        Type::UUID => tagged(TaggedType::Uuid),
        Type::JSON => tagged(TaggedType::Json),
        Type::JSONB => tagged(TaggedType::Jsonb),
        _ => return None,
    })
}

/// An array parameter's value as a list of `list_field`'s type: text in
/// PostgreSQL's array form, or binary with elements of the client's type
/// (cast to the expected one).
fn decode_array(
    list_field: &Field,
    wire_type: &Type,
    bytes: &[u8],
    binary: bool,
) -> PgWireResult<ScalarValue> {
    if !binary {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| invalid_array("an array parameter is not valid UTF-8"))?;
        let texts = StringArray::from(vec![Some(text)]);
        let list = column_from_text(
            list_field,
            &texts,
            crate::engine::types::UTC,
            Default::default(),
        )
        .map_err(|bad| invalid_array(bad.message))?;
        return ScalarValue::try_from_array(&list, 0).map_err(invalid_array);
    }
    let expected = element_field(list_field).expect("a list");
    let element = match wire_type.kind() {
        Kind::Array(member) => wire_element(member).unwrap_or_else(|| expected.clone()),
        _ => expected.clone(),
    };
    let value = crate::sql::copy::decode_binary_array(&element, bytes).map_err(invalid_array)?;
    if value.data_type() == *list_field.data_type() {
        return Ok(value);
    }
    value.cast_to(list_field.data_type()).map_err(invalid_array)
}

/// A number parameter as the kind of number the statement expects:
/// exactly, or refused (22003 out of the type's range; 22P02 for a value
/// the type cannot hold exactly, such as `5.5` for an integer or `100.555`
/// for a `numeric(10,2)`, which a conversion would round or cut and so
/// compare otherwise than PostgreSQL, which compares them as numbers of
/// the wider kind).
fn numeric_parameter(i: usize, value: ScalarValue, target: &DataType) -> PgWireResult<ScalarValue> {
    let error = |code: &str, message: String| {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            code.into(),
            message,
        )))
    };
    let type_name = match target {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        _ => "numeric",
    };
    let converted = value.cast_to(target).map_err(|_| {
        error(
            "22003",
            format!(
                "parameter ${}: {value} is out of range for type {type_name}",
                i + 1
            ),
        )
    })?;
    let back = converted.cast_to(&value.data_type()).ok();
    if back.as_ref() != Some(&value) {
        return Err(error(
            "22P02",
            format!(
                "parameter ${}: {value} is not exactly a value of type {type_name}, the type expected here; cast the parameter or the column",
                i + 1
            ),
        ));
    }
    Ok(converted)
}

fn invalid_array(message: impl ToString) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "22P02".into(),
        message.to_string(),
    )))
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

/// A numeric parameter in text as plain digits (unchanged when it is not
/// a number: its error comes from the decoder).
fn plain_numeric_bytes(bytes: Bytes) -> Bytes {
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(plain_numeric)
        .map_or(bytes, Bytes::from)
}

fn protocol_error(msg: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "08P01".into(),
        msg,
    )))
}
