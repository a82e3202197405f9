//! Postgres column types as Arrow fields: what `CREATE TABLE` stores, and the
//! names under which `\d` and error messages show them again.
//!
//! Several Postgres types share one Arrow representation (uuid, json and
//! varchar(n) are all Utf8). The Postgres type is kept in the field's
//! metadata under [`PG_TYPE_KEY`], so it survives projection through
//! DataFusion and reaches the wire layer, which reports the right type OID.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType as SqlType, ExactNumberInfo, TimezoneInfo,
};

use crate::error::{QuiverError, Result};

/// Field metadata key holding the Postgres type of a column whose Arrow type
/// alone does not say it (`uuid`, `json`, `jsonb`, `varchar`, `bpchar`).
pub const PG_TYPE_KEY: &str = "quiver.pg_type";
/// Field metadata key holding the declared length of `varchar(n)`/`char(n)`
/// (of an array column: of its elements).
pub const PG_TYPMOD_KEY: &str = "quiver.typmod";
/// Field metadata key of an array column (an Arrow `List`) whose elements
/// are one of the tagged types (`varchar(n)[]`, `uuid[]`, `jsonb[]`): the
/// element's tag. The tag sits on the column, not on the list's item
/// field, so that the column's Arrow type stays the plain `List(Utf8)`
/// every array expression has.
pub const PG_ELEMENT_TYPE_KEY: &str = "quiver.pg_element_type";

/// Timestamps are kept with microsecond precision, as in Postgres.
pub const TIMESTAMP_UNIT: TimeUnit = TimeUnit::Microsecond;
/// Time zone stored with `timestamptz` columns; values are instants.
pub const UTC: &str = "UTC";

/// The Postgres types whose Arrow representation needs a metadata tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaggedType {
    Uuid,
    Json,
    Jsonb,
    Varchar,
    Bpchar,
    /// `int2vector` and `oidvector` (system catalogs only): lists whose
    /// text form is the values separated by spaces.
    Int2Vector,
    OidVector,
}

impl TaggedType {
    pub fn name(self) -> &'static str {
        match self {
            TaggedType::Uuid => "uuid",
            TaggedType::Json => "json",
            TaggedType::Jsonb => "jsonb",
            TaggedType::Varchar => "varchar",
            TaggedType::Bpchar => "bpchar",
            TaggedType::Int2Vector => "int2vector",
            TaggedType::OidVector => "oidvector",
        }
    }

    pub fn of(field: &Field) -> Option<TaggedType> {
        Self::named(field.metadata().get(PG_TYPE_KEY)?)
    }

    /// The tag of an array column's elements.
    pub fn of_elements(field: &Field) -> Option<TaggedType> {
        Self::named(field.metadata().get(PG_ELEMENT_TYPE_KEY)?)
    }

    fn named(name: &str) -> Option<TaggedType> {
        match name {
            "uuid" => Some(TaggedType::Uuid),
            "json" => Some(TaggedType::Json),
            "jsonb" => Some(TaggedType::Jsonb),
            "varchar" => Some(TaggedType::Varchar),
            "bpchar" => Some(TaggedType::Bpchar),
            "int2vector" => Some(TaggedType::Int2Vector),
            "oidvector" => Some(TaggedType::OidVector),
            _ => None,
        }
    }
}

/// Declared maximum length of a `varchar(n)` / `char(n)` column.
pub fn declared_length(field: &Field) -> Option<usize> {
    field.metadata().get(PG_TYPMOD_KEY)?.parse().ok()
}

/// The field of a `char(n)` or `varchar(n)` value (`tag`; `length` None:
/// `bpchar`, `varchar`), as casts to them are typed.
pub fn character_field(tag: TaggedType, length: Option<usize>) -> Field {
    let mut metadata = HashMap::from([(PG_TYPE_KEY.to_string(), tag.name().to_string())]);
    if let Some(n) = length {
        metadata.insert(PG_TYPMOD_KEY.to_string(), n.to_string());
    }
    Field::new("", DataType::Utf8, true).with_metadata(metadata)
}

/// The Arrow field for a column declared as `name sql_type`.
pub fn column_field(name: &str, sql_type: &SqlType, nullable: bool) -> Result<Field> {
    let (data_type, tag, typmod) = arrow_type(sql_type)?;
    let mut field = Field::new(name, data_type, nullable);
    if let Some(tag) = tag {
        let key = match field.data_type() {
            DataType::List(_) => PG_ELEMENT_TYPE_KEY,
            _ => PG_TYPE_KEY,
        };
        let mut meta = HashMap::from([(key.to_string(), tag.name().to_string())]);
        if let Some(n) = typmod {
            meta.insert(PG_TYPMOD_KEY.to_string(), n.to_string());
        }
        field = field.with_metadata(meta);
    }
    Ok(field)
}

/// A column's Arrow type, the tag of its Postgres type (of an array: of
/// its elements) and its declared length.
type ArrowType = (DataType, Option<TaggedType>, Option<u64>);

/// The item field of every array column's `List`: the one DataFusion's
/// array expressions (`ARRAY[...]`, `array_agg`) produce.
pub fn array_item(element: DataType) -> Field {
    Field::new_list_field(element, true)
}

/// `t[]`, `t[][]`, `t ARRAY`, `t[4]`: a list of `t`. As in PostgreSQL, the
/// declared dimensions and sizes are decoration; the values are
/// one-dimensional.
fn array_type(element: &SqlType) -> Result<ArrowType> {
    let element = match element {
        SqlType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner),
        ) => return array_type(inner),
        other => other,
    };
    let (data_type, tag, typmod) = arrow_type(element)?;
    match data_type {
        // Checkpoints store intervals as structs of their parts; an
        // interval inside a list has no such form yet.
        DataType::Interval(_) => Err(QuiverError::FeatureNotSupported(
            "arrays of interval are not supported as column types".into(),
        )),
        data_type => Ok((DataType::List(array_item(data_type).into()), tag, typmod)),
    }
}

pub fn arrow_type(sql_type: &SqlType) -> Result<ArrowType> {
    use SqlType as S;
    let plain = |t: DataType| Ok((t, None, None));
    match sql_type {
        S::SmallInt(_) | S::Int2(_) => plain(DataType::Int16),
        S::Int(_) | S::Integer(_) | S::Int4(_) => plain(DataType::Int32),
        S::BigInt(_) | S::Int8(_) => plain(DataType::Int64),
        S::Real | S::Float4 => plain(DataType::Float32),
        S::DoublePrecision | S::Float8 | S::Double(_) => plain(DataType::Float64),
        S::Float(info) => match info {
            ExactNumberInfo::Precision(p) if *p <= 24 => plain(DataType::Float32),
            _ => plain(DataType::Float64),
        },
        S::Numeric(info) | S::Decimal(info) | S::Dec(info) => decimal(info),
        S::Text | S::String(None) => plain(DataType::Utf8),
        S::Varchar(len) | S::CharacterVarying(len) | S::CharVarying(len) => {
            let n = char_length(len)?;
            Ok((DataType::Utf8, Some(TaggedType::Varchar), n))
        }
        S::Char(len) | S::Character(len) => {
            // char without a length is char(1) in Postgres.
            let n = char_length(len)?.unwrap_or(1);
            Ok((DataType::Utf8, Some(TaggedType::Bpchar), Some(n)))
        }
        S::Bool | S::Boolean => plain(DataType::Boolean),
        S::Date => plain(DataType::Date32),
        S::Time(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            Err(QuiverError::FeatureNotSupported(
                "time with time zone is not supported; use time or timestamptz".into(),
            ))
        }
        S::Time(..) => plain(DataType::Time64(TimeUnit::Microsecond)),
        S::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => {
            plain(DataType::Timestamp(TIMESTAMP_UNIT, Some(UTC.into())))
        }
        S::Timestamp(..) | S::Datetime(_) => plain(DataType::Timestamp(TIMESTAMP_UNIT, None)),
        S::Interval { .. } => plain(DataType::Interval(IntervalUnit::MonthDayNano)),
        S::Bytea => plain(DataType::Binary),
        S::Uuid => Ok((DataType::Utf8, Some(TaggedType::Uuid), None)),
        S::JSON => Ok((DataType::Utf8, Some(TaggedType::Json), None)),
        S::JSONB => Ok((DataType::Utf8, Some(TaggedType::Jsonb), None)),
        S::Custom(name, _) => custom_type(&name.to_string().to_ascii_lowercase()),
        S::Array(
            ArrayElemTypeDef::SquareBracket(element, _)
            | ArrayElemTypeDef::AngleBracket(element)
            | ArrayElemTypeDef::Parenthesis(element),
        ) => array_type(element),
        other => Err(QuiverError::UndefinedType(other.to_string().to_lowercase())),
    }
}

/// Names the parser does not know as keywords arrive as custom types.
fn custom_type(name: &str) -> Result<ArrowType> {
    let plain = |t: DataType| Ok((t, None, None));
    match name.trim_matches('"') {
        "serial" | "serial2" | "serial4" | "serial8" | "smallserial" | "bigserial" => {
            Err(QuiverError::FeatureNotSupported(format!(
                "{name} is a column type of CREATE TABLE only (ALTER TABLE ... ADD COLUMN \
                 of a {name} is not supported: add an integer column with DEFAULT nextval(...))"
            )))
        }
        "int4" => plain(DataType::Int32),
        "int2" => plain(DataType::Int16),
        "int8" => plain(DataType::Int64),
        "float4" => plain(DataType::Float32),
        "float8" => plain(DataType::Float64),
        "bool" => plain(DataType::Boolean),
        "timestamptz" => plain(DataType::Timestamp(TIMESTAMP_UNIT, Some(UTC.into()))),
        "bpchar" => Ok((DataType::Utf8, Some(TaggedType::Bpchar), None)),
        "uuid" => Ok((DataType::Utf8, Some(TaggedType::Uuid), None)),
        "json" => Ok((DataType::Utf8, Some(TaggedType::Json), None)),
        "jsonb" => Ok((DataType::Utf8, Some(TaggedType::Jsonb), None)),
        "name" | "citext" => plain(DataType::Utf8),
        other => Err(QuiverError::UndefinedType(other.to_string())),
    }
}

fn decimal(info: &ExactNumberInfo) -> Result<ArrowType> {
    let (precision, scale) = match info {
        // Postgres' unconstrained numeric has no fixed scale; Arrow needs one.
        ExactNumberInfo::None => (38, 10),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if precision == 0 || precision > 38 {
        return Err(QuiverError::InvalidParameterValue(format!(
            "NUMERIC precision {precision} must be between 1 and 38"
        )));
    }
    if scale < 0 || scale as u64 > precision {
        return Err(QuiverError::InvalidParameterValue(format!(
            "NUMERIC scale {scale} must be between 0 and precision {precision}"
        )));
    }
    Ok((
        DataType::Decimal128(precision as u8, scale as i8),
        None,
        None,
    ))
}

fn char_length(len: &Option<CharacterLength>) -> Result<Option<u64>> {
    match len {
        None => Ok(None),
        Some(CharacterLength::IntegerLength { length: 0, .. }) => Err(
            QuiverError::InvalidParameterValue("length for type varchar must be at least 1".into()),
        ),
        Some(CharacterLength::IntegerLength { length, .. }) => Ok(Some(*length)),
        Some(CharacterLength::Max) => Ok(None),
    }
}

/// `8-4-4-4-12` hyphenation of a uuid's 32 hex digits, the one form we
/// store and show.
pub fn hyphenated_uuid(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The element of an array column as a field of its own, tagged as the
/// column's elements are (None: `field` is not an array).
pub fn element_field(field: &Field) -> Option<Field> {
    let DataType::List(item) = field.data_type() else {
        return None;
    };
    let mut element = item.as_ref().clone().with_name(field.name());
    if let Some(tag) = TaggedType::of_elements(field) {
        let mut meta = HashMap::from([(PG_TYPE_KEY.to_string(), tag.name().to_string())]);
        if let Some(n) = declared_length(field) {
            meta.insert(PG_TYPMOD_KEY.to_string(), n.to_string());
        }
        element = element.with_metadata(meta);
    }
    Some(element)
}

/// The Postgres name of a column's type, as `\d` and `format_type()` show it.
pub fn display_type(field: &Field) -> String {
    let len = declared_length(field);
    if let (None, Some(element)) = (TaggedType::of(field), element_field(field)) {
        return format!("{}[]", display_type(&element));
    }
    match (TaggedType::of(field), len) {
        (Some(TaggedType::Varchar), Some(n)) => return format!("character varying({n})"),
        (Some(TaggedType::Varchar), None) => return "character varying".into(),
        (Some(TaggedType::Bpchar), Some(n)) => return format!("character({n})"),
        (Some(TaggedType::Bpchar), None) => return "character".into(),
        (Some(tag), _) => return tag.name().into(),
        (None, _) => {}
    }
    match field.data_type() {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varchar_keeps_its_length_in_metadata() {
        let f = column_field(
            "name",
            &SqlType::Varchar(Some(CharacterLength::IntegerLength {
                length: 10,
                unit: None,
            })),
            true,
        )
        .unwrap();
        assert_eq!(f.data_type(), &DataType::Utf8);
        assert_eq!(TaggedType::of(&f), Some(TaggedType::Varchar));
        assert_eq!(display_type(&f), "character varying(10)");
    }

    #[test]
    fn numeric_precision_out_of_range_is_rejected() {
        let t = SqlType::Numeric(ExactNumberInfo::PrecisionAndScale(60, 2));
        assert!(column_field("x", &t, true).is_err());
    }
}
