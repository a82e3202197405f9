//! `json` and `jsonb` as PostgreSQL has them: the operators (`->`, `->>`,
//! `#>`, `#>>`, `?`, `?|`, `?&`, `@>`, `<@`, `||`, `-`, `#-`), the
//! functions applications and analysts call (`jsonb_build_object`,
//! `to_jsonb`, `jsonb_typeof`, `jsonb_set`, ...), the aggregates
//! (`jsonb_agg`, `jsonb_object_agg` and their `json` twins) and the
//! set-returning `jsonb_array_elements` and `jsonb_object_keys` in a
//! select list. Values are text tagged `json` or `jsonb`
//! ([`crate::engine::json`] reads and writes them).

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, ListBuilder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DFSchema, DataFusionError, ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::{Placeholder, ScalarFunction};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments,
};

use crate::engine::json::{self, array_position, key_order, Json, Pieces};
use crate::engine::types::{TaggedType, PG_TYPE_KEY};
use crate::error::QuiverError;

/// What one of the functions computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    /// `->`: a member or element, as the input's type.
    Get,
    /// `->>`: a member or element as text.
    GetText,
    /// `#>` and `jsonb_extract_path`.
    Path,
    /// `#>>` and `jsonb_extract_path_text`.
    PathText,
    /// `?`, `?|`, `?&`.
    Exists,
    ExistsAny,
    ExistsAll,
    /// `@>` (`<@` with its arguments swapped).
    Contains,
    /// `||` of two jsonb values.
    Concat,
    /// `-` a key, a position or an array of keys.
    Delete,
    /// `#-` a path.
    DeletePath,
    TypeOf,
    ArrayLength,
    BuildObject,
    BuildArray,
    To,
    Set,
    StripNulls,
    Pretty,
    /// The set-returning functions, as a list per row that the select
    /// list unnests.
    ObjectKeys,
    ArrayElements,
    ArrayElementsText,
    /// Its text argument, as json or jsonb (what unnests
    /// `jsonb_array_elements`' lists is plain text to DataFusion).
    Tag,
    /// The aggregates' last step: a list of element texts to one array.
    ArrayOf,
    /// A `[key, value]` pair for `jsonb_object_agg`, and the list of
    /// them to one object.
    Pair,
    ObjectOf,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFunction {
    name: &'static str,
    op: Op,
    /// Whether the result is `jsonb` (else `json`) where the function
    /// makes a JSON value not from its input.
    jsonb: bool,
    signature: Signature,
}

/// The functions: name, what it computes, whether it makes jsonb.
const FUNCTIONS: &[(&str, Op, bool)] = {
    use Op::*;
    &[
        ("pg_json_get", Get, true),
        ("pg_json_get_text", GetText, true),
        ("pg_json_path", Path, true),
        ("pg_json_path_text", PathText, true),
        ("pg_jsonb_exists", Exists, true),
        ("pg_jsonb_exists_any", ExistsAny, true),
        ("pg_jsonb_exists_all", ExistsAll, true),
        ("pg_jsonb_contains", Contains, true),
        ("pg_jsonb_concat", Concat, true),
        ("pg_jsonb_delete", Delete, true),
        ("pg_jsonb_delete_path", DeletePath, true),
        ("jsonb_typeof", TypeOf, true),
        ("json_typeof", TypeOf, false),
        ("jsonb_array_length", ArrayLength, true),
        ("json_array_length", ArrayLength, false),
        ("jsonb_build_object", BuildObject, true),
        ("json_build_object", BuildObject, false),
        ("jsonb_build_array", BuildArray, true),
        ("json_build_array", BuildArray, false),
        ("to_jsonb", To, true),
        ("to_json", To, false),
        ("row_to_json", To, false),
        ("jsonb_extract_path", Path, true),
        ("json_extract_path", Path, false),
        ("jsonb_extract_path_text", PathText, true),
        ("json_extract_path_text", PathText, false),
        ("jsonb_set", Set, true),
        ("jsonb_strip_nulls", StripNulls, true),
        ("json_strip_nulls", StripNulls, false),
        ("jsonb_pretty", Pretty, true),
        ("jsonb_object_keys", ObjectKeys, true),
        ("json_object_keys", ObjectKeys, false),
        ("jsonb_array_elements", ArrayElements, true),
        ("json_array_elements", ArrayElements, false),
        ("jsonb_array_elements_text", ArrayElementsText, true),
        ("json_array_elements_text", ArrayElementsText, false),
        ("pg_jsonb_tag", Tag, true),
        ("pg_json_tag", Tag, false),
        ("pg_jsonb_array_of", ArrayOf, true),
        ("pg_json_array_of", ArrayOf, false),
        ("pg_jsonb_pair", Pair, true),
        ("pg_json_pair", Pair, false),
        ("pg_jsonb_object_of", ObjectOf, true),
        ("pg_json_object_of", ObjectOf, false),
    ]
};

fn json_function(&(name, op, jsonb): &(&'static str, Op, bool)) -> ScalarUDF {
    ScalarUDF::from(JsonFunction {
        name,
        op,
        jsonb,
        signature: Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Immutable,
        ),
    })
}

/// The functions, for registering with a session.
pub fn udfs() -> Vec<ScalarUDF> {
    FUNCTIONS.iter().map(json_function).collect()
}

fn tag_field(name: &str, tag: TaggedType) -> Field {
    let meta = [(PG_TYPE_KEY.to_string(), tag.name().to_string())].into();
    Field::new(name, DataType::Utf8, true).with_metadata(meta)
}

/// The item field of `jsonb_array_elements`' lists.
fn element_field(tag: TaggedType) -> Field {
    let meta = [(PG_TYPE_KEY.to_string(), tag.name().to_string())].into();
    Field::new_list_field(DataType::Utf8, true).with_metadata(meta)
}

fn json_tag(jsonb: bool) -> TaggedType {
    if jsonb {
        TaggedType::Jsonb
    } else {
        TaggedType::Json
    }
}

/// The tag of a field that holds JSON.
fn json_kind(field: &Field) -> Option<TaggedType> {
    TaggedType::of(field).filter(|t| matches!(t, TaggedType::Json | TaggedType::Jsonb))
}

fn failed(e: QuiverError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn invalid(message: impl Into<String>) -> DataFusionError {
    failed(QuiverError::InvalidParameterValue(message.into()))
}

impl ScalarUDFImpl for JsonFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.op {
            Op::Exists | Op::ExistsAny | Op::ExistsAll | Op::Contains => DataType::Boolean,
            Op::ArrayLength => DataType::Int32,
            Op::ObjectKeys | Op::ArrayElements | Op::ArrayElementsText => {
                DataType::new_list(DataType::Utf8, true)
            }
            _ => DataType::Utf8,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let input = args.arg_fields.first().and_then(|f| json_kind(f));
        let own = json_tag(self.jsonb);
        let field = match self.op {
            Op::Get | Op::Path if self.name.starts_with("pg_") => {
                tag_field(self.name, input.unwrap_or(TaggedType::Jsonb))
            }
            Op::Get
            | Op::Path
            | Op::Concat
            | Op::Delete
            | Op::DeletePath
            | Op::BuildObject
            | Op::BuildArray
            | Op::To
            | Op::Set
            | Op::StripNulls
            | Op::ArrayOf
            | Op::Tag
            | Op::Pair
            | Op::ObjectOf => tag_field(self.name, own),
            // The elements carry the tag, so what unnests them is json.
            Op::ArrayElements => Field::new(
                self.name,
                DataType::List(Arc::new(element_field(own))),
                true,
            ),
            _ => {
                let types: Vec<DataType> = args
                    .arg_fields
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect();
                Field::new(self.name, self.return_type(&types)?, true)
            }
        };
        Ok(Arc::new(field))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let fields = args.arg_fields.clone();
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input_kind = fields.first().and_then(|f| json_kind(f));
        // Whether the first argument is `json` text (kept as written)
        // rather than `jsonb` (or text read as jsonb).
        let raw_json = input_kind == Some(TaggedType::Json)
            || (input_kind.is_none() && !self.jsonb && !self.name.starts_with("pg_"));
        let out: ArrayRef = match self.op {
            Op::Get | Op::GetText | Op::Path | Op::PathText => {
                let text = self.op == Op::GetText || self.op == Op::PathText;
                let doc = texts(&arrays[0])?;
                let steps = if self.name.starts_with("pg_json_path") {
                    Steps::array(&arrays[1])
                } else {
                    Steps::new(&arrays[1..], matches!(self.op, Op::Get | Op::GetText))?
                };
                let mut out = StringBuilder::new();
                for row in 0..rows {
                    let (Some(doc), Some(path)) = (doc.get(row), steps.get(row)?) else {
                        out.append_null();
                        continue;
                    };
                    let value = if raw_json {
                        raw_at_path(doc, &path, text)?
                    } else {
                        let parsed = parse_jsonb(doc)?;
                        let found = path
                            .iter()
                            .try_fold(&parsed, |value, step| step.child(value));
                        found.and_then(|v| {
                            if text {
                                v.to_text()
                            } else {
                                Some(v.to_jsonb_text())
                            }
                        })
                    };
                    out.append_option(value);
                }
                Arc::new(out.finish())
            }
            Op::Exists | Op::ExistsAny | Op::ExistsAll => {
                let doc = texts(&arrays[0])?;
                let mut out = BooleanBuilder::new();
                for row in 0..rows {
                    let Some(doc) = doc.get(row) else {
                        out.append_null();
                        continue;
                    };
                    let value = parse_jsonb(doc)?;
                    let answer = if self.op == Op::Exists {
                        let key = texts(&arrays[1])?;
                        key.get(row).map(|k| value.has_key(k))
                    } else {
                        text_list(&arrays[1], row)?.map(|keys| {
                            let mut present = keys.iter().flatten().map(|k| value.has_key(k));
                            if self.op == Op::ExistsAny {
                                present.any(|p| p)
                            } else {
                                present.all(|p| p)
                            }
                        })
                    };
                    out.append_option(answer);
                }
                Arc::new(out.finish())
            }
            Op::Contains => {
                let (a, b) = (texts(&arrays[0])?, texts(&arrays[1])?);
                let mut out = BooleanBuilder::new();
                for row in 0..rows {
                    match (a.get(row), b.get(row)) {
                        (Some(a), Some(b)) => {
                            out.append_value(parse_jsonb(a)?.contains(&parse_jsonb(b)?))
                        }
                        _ => out.append_null(),
                    }
                }
                Arc::new(out.finish())
            }
            Op::Concat => {
                let (a, b) = (texts(&arrays[0])?, texts(&arrays[1])?);
                strings(rows, |row| {
                    let (Some(a), Some(b)) = (a.get(row), b.get(row)) else {
                        return Ok(None);
                    };
                    Ok(Some(
                        concat(parse_jsonb(a)?, parse_jsonb(b)?).to_jsonb_text(),
                    ))
                })?
            }
            Op::Delete => {
                let doc = texts(&arrays[0])?;
                let what = &arrays[1];
                strings(rows, |row| {
                    let Some(doc) = doc.get(row) else {
                        return Ok(None);
                    };
                    if is_null(what, row) {
                        return Ok(None);
                    }
                    let value = parse_jsonb(doc)?;
                    let deleted = match what.data_type() {
                        t if t.is_integer() => {
                            let at = ScalarValue::try_from_array(what, row)?;
                            let at = i64::try_from(at.cast_to(&DataType::Int64)?)?;
                            delete_position(value, at)?
                        }
                        DataType::List(_) => {
                            let keys = text_list(what, row)?.unwrap_or_default();
                            keys.iter()
                                .flatten()
                                .try_fold(value, |v, k| delete_key(v, k))?
                        }
                        _ => {
                            let key = texts(what)?;
                            delete_key(value, key.get(row).unwrap_or_default())?
                        }
                    };
                    Ok(Some(deleted.to_jsonb_text()))
                })?
            }
            Op::DeletePath => {
                let doc = texts(&arrays[0])?;
                let steps = Steps::array(&arrays[1]);
                strings(rows, |row| {
                    let (Some(doc), Some(path)) = (doc.get(row), steps.texts(row)?) else {
                        return Ok(None);
                    };
                    let mut value = parse_jsonb(doc)?;
                    delete_path(&mut value, &path)?;
                    Ok(Some(value.to_jsonb_text()))
                })?
            }
            Op::TypeOf => {
                let doc = texts(&arrays[0])?;
                strings(rows, |row| {
                    Ok(match doc.get(row) {
                        Some(d) => Some(
                            json::parse(d, !raw_json)
                                .map_err(failed)?
                                .type_name()
                                .to_string(),
                        ),
                        None => None,
                    })
                })?
            }
            Op::ArrayLength => {
                let doc = texts(&arrays[0])?;
                let mut out = Int32Builder::new();
                for row in 0..rows {
                    let Some(d) = doc.get(row) else {
                        out.append_null();
                        continue;
                    };
                    match json::parse(d, !raw_json).map_err(failed)? {
                        Json::Array(items) => out.append_value(items.len() as i32),
                        Json::Object(_) => {
                            return Err(invalid("cannot get array length of a non-array"))
                        }
                        _ => return Err(invalid("cannot get array length of a scalar")),
                    }
                }
                Arc::new(out.finish())
            }
            Op::BuildObject => {
                if arrays.len() % 2 != 0 {
                    return Err(invalid("argument list must have even number of elements"));
                }
                strings(rows, |row| {
                    let mut members = Vec::with_capacity(arrays.len() / 2);
                    for pair in arrays.chunks(2).zip(fields.chunks(2)) {
                        let ((keys, values), (_, value_field)) =
                            (pair.0.split_at(1), pair.1.split_at(1));
                        let key = ScalarValue::try_from_array(&keys[0], row)?;
                        if key.is_null() {
                            return Err(invalid("argument 1: key must not be null"));
                        }
                        let key = key_text(&key)?;
                        members.push((key, sql_value(&values[0], &value_field[0], row)?));
                    }
                    Ok(Some(if self.jsonb {
                        let members = members
                            .into_iter()
                            .map(|(k, v)| Ok((Cow::Owned(k), v.into_jsonb()?)))
                            .collect::<Result<Vec<_>>>()?;
                        Json::object(members).to_jsonb_text()
                    } else {
                        let items: Vec<String> = members
                            .iter()
                            .map(|(k, v)| {
                                let mut item = String::new();
                                json::write_string(&mut item, k);
                                item.push_str(" : ");
                                item.push_str(&v.json_text());
                                item
                            })
                            .collect();
                        format!("{{{}}}", items.join(", "))
                    }))
                })?
            }
            Op::BuildArray => strings(rows, |row| {
                let values = arrays
                    .iter()
                    .zip(fields.iter())
                    .map(|(a, f)| sql_value(a, f, row))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some(if self.jsonb {
                    let items = values
                        .into_iter()
                        .map(SqlJson::into_jsonb)
                        .collect::<Result<Vec<_>>>()?;
                    Json::Array(items).to_jsonb_text()
                } else {
                    let items: Vec<String> = values.iter().map(SqlJson::json_text).collect();
                    format!("[{}]", items.join(", "))
                }))
            })?,
            Op::To => strings(rows, |row| {
                if is_null(&arrays[0], row) {
                    return Ok(None);
                }
                let value = sql_value(&arrays[0], &fields[0], row)?;
                Ok(Some(if self.jsonb {
                    value.into_jsonb()?.to_jsonb_text()
                } else {
                    value.json_text()
                }))
            })?,
            Op::Set => {
                let doc = texts(&arrays[0])?;
                let steps = Steps::array(&arrays[1]);
                let new = texts(&arrays[2])?;
                let create = match arrays.get(3) {
                    Some(a) => Some(cast(a, &DataType::Boolean)?),
                    None => None,
                };
                strings(rows, |row| {
                    let (Some(doc), Some(path), Some(new)) =
                        (doc.get(row), steps.texts(row)?, new.get(row))
                    else {
                        return Ok(None);
                    };
                    let create = match &create {
                        Some(c) if is_null(c, row) => return Ok(None),
                        Some(c) => c.as_boolean().value(row),
                        None => true,
                    };
                    let mut value = parse_jsonb(doc)?;
                    set_path(&mut value, &path, parse_jsonb(new)?, create)?;
                    Ok(Some(value.to_jsonb_text()))
                })?
            }
            Op::StripNulls => {
                let doc = texts(&arrays[0])?;
                strings(rows, |row| {
                    let Some(d) = doc.get(row) else {
                        return Ok(None);
                    };
                    let stripped = json::parse(d, !raw_json).map_err(failed)?.strip_nulls();
                    Ok(Some(if raw_json {
                        compact_json(&stripped)
                    } else {
                        stripped.to_jsonb_text()
                    }))
                })?
            }
            Op::Pretty => {
                let doc = texts(&arrays[0])?;
                strings(rows, |row| {
                    let Some(d) = doc.get(row) else {
                        return Ok(None);
                    };
                    let mut out = String::new();
                    parse_jsonb(d)?.write_pretty(&mut out, 0);
                    Ok(Some(out))
                })?
            }
            Op::ObjectKeys | Op::ArrayElements | Op::ArrayElementsText => {
                let doc = texts(&arrays[0])?;
                let mut out = ListBuilder::new(StringBuilder::new());
                if self.op == Op::ArrayElements {
                    out = out.with_field(element_field(json_tag(self.jsonb)));
                }
                for row in 0..rows {
                    let Some(d) = doc.get(row) else {
                        out.append_null();
                        continue;
                    };
                    let items = set_items(self.op, d, raw_json)?;
                    for item in items {
                        out.values().append_option(item);
                    }
                    out.append(true);
                }
                Arc::new(out.finish())
            }
            Op::Tag => cast(&arrays[0], &DataType::Utf8)?,
            Op::ArrayOf => strings(rows, |row| {
                let Some(items) = text_list(&arrays[0], row)? else {
                    return Ok(None);
                };
                Ok(Some(if self.jsonb {
                    let items = items
                        .iter()
                        .map(|i| match i {
                            Some(t) => parse_jsonb(t).map(Json::into_owned),
                            None => Ok(Json::Null),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Json::Array(items).to_jsonb_text()
                } else {
                    let items: Vec<&str> = items
                        .iter()
                        .map(|i| i.as_deref().unwrap_or("null"))
                        .collect();
                    // Whole rows go one to a line after the first, as
                    // PostgreSQL's json_agg writes them (arrays too there;
                    // here their type is gone by now).
                    let rows = arrays
                        .get(1)
                        .is_some_and(|a| a.as_boolean_opt().is_some_and(|b| b.value(row)));
                    format!("[{}]", items.join(if rows { ", \n " } else { ", " }))
                }))
            })?,
            Op::Pair => {
                let keys = &arrays[0];
                strings(rows, |row| {
                    let key = ScalarValue::try_from_array(keys, row)?;
                    if key.is_null() {
                        return Err(invalid("field name must not be null"));
                    }
                    let key = SqlJson::Text(key_text(&key)?);
                    let value = sql_value(&arrays[1], &fields[1], row)?;
                    Ok(Some(if self.jsonb {
                        Json::Array(vec![key.into_jsonb()?, value.into_jsonb()?]).to_jsonb_text()
                    } else {
                        format!("[{}, {}]", key.json_text(), value.json_text())
                    }))
                })?
            }
            Op::ObjectOf => strings(rows, |row| {
                let Some(pairs) = text_list(&arrays[0], row)? else {
                    return Ok(None);
                };
                Ok(Some(if self.jsonb {
                    let mut members = Vec::with_capacity(pairs.len());
                    for pair in pairs.iter().flatten() {
                        if let Json::Array(mut kv) = parse_jsonb(pair)?.into_owned() {
                            let value = kv.pop().unwrap_or(Json::Null);
                            if let Some(Json::String(key)) = kv.pop() {
                                members.push((key, value));
                            }
                        }
                    }
                    Json::object(members).to_jsonb_text()
                } else {
                    let mut items = Vec::with_capacity(pairs.len());
                    for pair in pairs.iter().flatten() {
                        if let Pieces::Array(kv) = json::pieces(pair).map_err(failed)? {
                            items.push(format!("{} : {}", kv[0], kv[1]));
                        }
                    }
                    format!("{{ {} }}", items.join(", "))
                }))
            })?,
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Whether `array` is NULL at `row` (a NULL literal's array has no
/// null buffer: its nulls are logical).
fn is_null(array: &ArrayRef, row: usize) -> bool {
    array.logical_nulls().is_some_and(|n| n.is_null(row))
}

/// A text argument, one `Option<&str>` per row.
struct Texts(ArrayRef);

impl Texts {
    fn get(&self, row: usize) -> Option<&str> {
        let strings = self.0.as_string::<i32>();
        (!strings.is_null(row)).then(|| strings.value(row))
    }
}

fn texts(array: &ArrayRef) -> Result<Texts> {
    Ok(Texts(cast(array, &DataType::Utf8)?))
}

/// A text array argument's elements in `row` (None: a NULL array).
fn text_list(array: &ArrayRef, row: usize) -> Result<Option<Vec<Option<String>>>> {
    if is_null(array, row) {
        return Ok(None);
    }
    match array.data_type() {
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            let list = cast(&list, &DataType::Utf8)?;
            let strings = list.as_string::<i32>();
            Ok(Some(
                strings.iter().map(|s| s.map(str::to_string)).collect(),
            ))
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(row);
            let list = cast(&list, &DataType::Utf8)?;
            let strings = list.as_string::<i32>();
            Ok(Some(
                strings.iter().map(|s| s.map(str::to_string)).collect(),
            ))
        }
        _ => {
            let text = texts(array)?;
            let text = text.get(row).unwrap_or_default();
            super::pg_arrays::parse_array_text(text)
                .map(Some)
                .map_err(|e| {
                    failed(QuiverError::InvalidTextRepresentation {
                        type_name: "text[]".into(),
                        value: e.message(text),
                    })
                })
        }
    }
}

/// Runs `value` for each row into a text column.
fn strings(
    rows: usize,
    mut value: impl FnMut(usize) -> Result<Option<String>>,
) -> Result<ArrayRef> {
    let mut out = StringBuilder::new();
    for row in 0..rows {
        out.append_option(value(row)?);
    }
    Ok(Arc::new(out.finish()))
}

fn parse_jsonb(text: &str) -> Result<Json<'_>> {
    json::parse(text, true).map_err(failed)
}

/// One step into a JSON value.
enum Step {
    /// `-> 'key'`: an object's member.
    Key(String),
    /// `-> 2`: an array's element.
    Index(i64),
    /// A path step (`#>`, `jsonb_extract_path`): a key in an object, a
    /// position written as an integer in an array.
    Either(String),
}

impl Step {
    /// The child of `value` this step names.
    fn child<'v, 'a>(&self, value: &'v Json<'a>) -> Option<&'v Json<'a>> {
        match self {
            Step::Key(k) => value.member(k),
            Step::Index(i) => value.element(*i),
            Step::Either(s) => value.at_path(&[s]),
        }
    }
}

/// The path of `->` (one key or position) or of `#>` and the
/// `extract_path` functions (a text array, or the variadic texts).
enum Steps {
    /// One argument: a key (text) or a position (an integer).
    One(ArrayRef),
    /// A text array.
    Array(ArrayRef),
    /// Variadic text arguments.
    Variadic(Vec<ArrayRef>),
}

impl Steps {
    /// `args` after the document: for `one`, a single key or position.
    fn new(args: &[ArrayRef], one: bool) -> Result<Steps> {
        if one {
            return Ok(Steps::One(args[0].clone()));
        }
        if args.len() == 1
            && matches!(
                args[0].data_type(),
                DataType::List(_) | DataType::LargeList(_)
            )
        {
            return Ok(Steps::Array(args[0].clone()));
        }
        Ok(Steps::Variadic(
            args.iter()
                .map(|a| cast(a, &DataType::Utf8))
                .collect::<std::result::Result<_, _>>()?,
        ))
    }

    /// A text array argument, written as a literal or given as an array.
    fn array(arg: &ArrayRef) -> Steps {
        Steps::Array(arg.clone())
    }

    /// The steps of `row` (None: a NULL key, path or path element, whose
    /// answer is NULL).
    fn get(&self, row: usize) -> Result<Option<Vec<Step>>> {
        let texts = |v: Option<Vec<Option<String>>>| {
            v.and_then(|steps| {
                steps
                    .into_iter()
                    .map(|s| s.map(Step::Either))
                    .collect::<Option<Vec<_>>>()
            })
        };
        match self {
            Steps::One(a) => {
                if is_null(a, row) {
                    return Ok(None);
                }
                let step = match ScalarValue::try_from_array(a, row)? {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)) => Step::Key(s),
                    other => Step::Index(i64::try_from(other.cast_to(&DataType::Int64)?)?),
                };
                Ok(Some(vec![step]))
            }
            Steps::Array(a) => Ok(texts(text_list(a, row)?)),
            Steps::Variadic(args) => Ok(texts(Some(
                args.iter()
                    .map(|a| {
                        let s = a.as_string::<i32>();
                        (!s.is_null(row)).then(|| s.value(row).to_string())
                    })
                    .collect(),
            ))),
        }
    }

    /// The steps of `row` as path texts (`jsonb_set`, `#-`).
    fn texts(&self, row: usize) -> Result<Option<Vec<String>>> {
        Ok(self.get(row)?.map(|steps| {
            steps
                .into_iter()
                .map(|s| match s {
                    Step::Key(k) | Step::Either(k) => k,
                    Step::Index(i) => i.to_string(),
                })
                .collect()
        }))
    }
}

/// `->>`'s text of a piece of `json` text: a string's contents, SQL
/// NULL for a JSON null, any other value as written.
fn raw_text(piece: &str) -> Result<Option<String>> {
    Ok(match json::parse(piece, false).map_err(failed)? {
        Json::Null => None,
        Json::String(s) => Some(s.into_owned()),
        _ => Some(piece.to_string()),
    })
}

/// The value at `path` in `json` text, as written (`text`: `->>`'s text).
fn raw_at_path(doc: &str, path: &[Step], text: bool) -> Result<Option<String>> {
    let mut current = doc;
    for step in path {
        let pieces = json::pieces(current).map_err(failed)?;
        let next = match (pieces, step) {
            // The last of repeated keys, as PostgreSQL's json operators.
            (Pieces::Object(members), Step::Key(key) | Step::Either(key)) => members
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| *v),
            (Pieces::Array(items), Step::Index(i)) => {
                array_position(items.len(), *i).map(|i| items[i])
            }
            (Pieces::Array(items), Step::Either(s)) => s
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|i| array_position(items.len(), i))
                .map(|i| items[i]),
            _ => None,
        };
        match next {
            Some(n) => current = n,
            None => return Ok(None),
        }
    }
    if !text {
        return Ok(Some(current.to_string()));
    }
    raw_text(current)
}

/// `||` of two jsonb values: objects merge (the right one's members
/// win), anything else concatenates as arrays.
fn concat<'a>(a: Json<'a>, b: Json<'a>) -> Json<'a> {
    match (a, b) {
        (Json::Object(mut left), Json::Object(right)) => {
            left.extend(right);
            Json::object(left)
        }
        (a, b) => {
            let as_items = |v: Json<'a>| match v {
                Json::Array(items) => items,
                other => vec![other],
            };
            let mut items = as_items(a);
            items.extend(as_items(b));
            Json::Array(items)
        }
    }
}

fn delete_key<'a>(value: Json<'a>, key: &str) -> Result<Json<'a>> {
    Ok(match value {
        Json::Object(members) => {
            Json::Object(members.into_iter().filter(|(k, _)| k != key).collect())
        }
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .filter(|i| !matches!(i, Json::String(s) if s == key))
                .collect(),
        ),
        _ => return Err(scalar_error("delete from")),
    })
}

fn scalar_error(what: &str) -> DataFusionError {
    invalid(format!("cannot {what} scalar"))
}

fn delete_position(value: Json<'_>, at: i64) -> Result<Json<'_>> {
    match value {
        Json::Array(mut items) => {
            if let Some(i) = array_position(items.len(), at) {
                items.remove(i);
            }
            Ok(Json::Array(items))
        }
        Json::Object(_) => Err(invalid("cannot delete from object using integer index")),
        _ => Err(scalar_error("delete from")),
    }
}

/// The parent of the value at `path` and the last step, if the parent
/// exists (None for an empty path); `doing` names the operation in the
/// error for a scalar document.
fn parent_at<'v, 'a, 'p>(
    value: &'v mut Json<'a>,
    path: &'p [String],
    doing: &str,
) -> Result<Option<(&'v mut Json<'a>, &'p String)>> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(None);
    };
    if matches!(
        value,
        Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_)
    ) {
        return Err(scalar_error(doing));
    }
    let mut current = value;
    for step in parents {
        current = match child_mut(current, step)? {
            Some(c) => c,
            None => return Ok(None),
        };
    }
    Ok(Some((current, last)))
}

/// `#-`: removes the value at `path`, if there is one.
fn delete_path(value: &mut Json<'_>, path: &[String]) -> Result<()> {
    let Some((current, last)) = parent_at(value, path, "delete path in")? else {
        return Ok(());
    };
    match current {
        Json::Object(members) => members.retain(|(k, _)| k != last),
        Json::Array(items) => {
            let at = path_position(last)?;
            if let Some(i) = array_position(items.len(), at) {
                items.remove(i);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A path step that must name an array position.
fn path_position(step: &str) -> Result<i64> {
    step.trim().parse().map_err(|_| {
        failed(QuiverError::InvalidTextRepresentation {
            type_name: "integer".into(),
            value: step.to_string(),
        })
    })
}

fn child_mut<'v, 'a>(value: &'v mut Json<'a>, step: &str) -> Result<Option<&'v mut Json<'a>>> {
    Ok(match value {
        Json::Object(members) => members
            .binary_search_by(|(k, _)| key_order(k, step))
            .ok()
            .map(|i| &mut members[i].1),
        Json::Array(items) => {
            let at = path_position(step)?;
            array_position(items.len(), at).map(|i| &mut items[i])
        }
        _ => None,
    })
}

/// `jsonb_set`: replaces the value at `path`, or adds it as the last
/// step's key or position when `create` is set and its parent exists.
fn set_path<'a>(value: &mut Json<'a>, path: &[String], new: Json<'a>, create: bool) -> Result<()> {
    let Some((current, last)) = parent_at(value, path, "set path in")? else {
        return Ok(());
    };
    match current {
        Json::Object(members) => match members.binary_search_by(|(k, _)| key_order(k, last)) {
            Ok(i) => members[i].1 = new,
            Err(i) if create => members.insert(i, (Cow::Owned(last.clone()), new)),
            Err(_) => {}
        },
        Json::Array(items) => {
            let at = path_position(last)?;
            match array_position(items.len(), at) {
                Some(i) => items[i] = new,
                None if create && at < 0 => items.insert(0, new),
                None if create => items.push(new),
                None => {}
            }
        }
        _ => {}
    }
    Ok(())
}

/// The rows a set-returning function yields for one document.
fn set_items(op: Op, doc: &str, raw_json: bool) -> Result<Vec<Option<String>>> {
    let what = match op {
        Op::ObjectKeys => "jsonb_object_keys",
        _ => "jsonb_array_elements",
    };
    if raw_json {
        return match (op, json::pieces(doc).map_err(failed)?) {
            (Op::ObjectKeys, Pieces::Object(members)) => Ok(members
                .into_iter()
                .map(|(k, _)| Some(k.into_owned()))
                .collect()),
            (Op::ArrayElements, Pieces::Array(items)) => {
                Ok(items.into_iter().map(|i| Some(i.to_string())).collect())
            }
            (Op::ArrayElementsText, Pieces::Array(items)) => {
                items.into_iter().map(raw_text).collect()
            }
            (_, Pieces::Scalar) => Err(invalid(format!("cannot call {what} on a scalar"))),
            (Op::ObjectKeys, _) => Err(invalid(format!("cannot call {what} on an array"))),
            _ => Err(invalid("cannot extract elements from an object")),
        };
    }
    match (op, parse_jsonb(doc)?) {
        (Op::ObjectKeys, Json::Object(members)) => Ok(members
            .into_iter()
            .map(|(k, _)| Some(k.into_owned()))
            .collect()),
        (Op::ArrayElements, Json::Array(items)) => {
            Ok(items.iter().map(|i| Some(i.to_jsonb_text())).collect())
        }
        (Op::ArrayElementsText, Json::Array(items)) => {
            Ok(items.iter().map(Json::to_text).collect())
        }
        (Op::ObjectKeys, Json::Array(_)) => Err(invalid(format!("cannot call {what} on an array"))),
        (Op::ObjectKeys, _) => Err(invalid(format!("cannot call {what} on a scalar"))),
        (_, Json::Object(_)) => Err(invalid("cannot extract elements from an object")),
        _ => Err(invalid("cannot extract elements from a scalar")),
    }
}

/// A `json` value written compactly (`json_strip_nulls`' output).
fn compact_json(value: &Json) -> String {
    let mut out = String::new();
    fn write(value: &Json, out: &mut String) {
        match value {
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json::write_string(out, k);
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            other => other.write_jsonb(out),
        }
    }
    write(value, &mut out);
    out
}

/// An SQL value on its way into JSON.
enum SqlJson {
    Null,
    Bool(bool),
    /// A number's text.
    Number(String),
    Text(String),
    /// JSON text of a `json` or `jsonb` value, or of an array.
    Json(String),
}

impl SqlJson {
    /// As `json` output writes it (`to_json`, `json_build_object`).
    fn json_text(&self) -> String {
        match self {
            SqlJson::Null => "null".into(),
            SqlJson::Bool(b) => b.to_string(),
            SqlJson::Number(n) => n.clone(),
            SqlJson::Text(s) => {
                let mut out = String::new();
                json::write_string(&mut out, s);
                out
            }
            SqlJson::Json(text) => text.clone(),
        }
    }

    fn into_jsonb(self) -> Result<Json<'static>> {
        Ok(match self {
            SqlJson::Null => Json::Null,
            SqlJson::Bool(b) => Json::Bool(b),
            SqlJson::Number(n) => Json::Number(Cow::Owned(n)),
            SqlJson::Text(s) => Json::String(Cow::Owned(s)),
            SqlJson::Json(text) => parse_jsonb(&text)?.into_owned(),
        })
    }
}

/// An object key from any SQL value, as PostgreSQL prints it.
fn key_text(key: &ScalarValue) -> Result<String> {
    Ok(match key {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
        other => match sql_scalar(other, None)? {
            SqlJson::Number(n) => n,
            SqlJson::Bool(b) => b.to_string(),
            SqlJson::Text(s) => s,
            other => other.json_text(),
        },
    })
}

/// One cell of `array` (of `field`) as a JSON value.
fn sql_value(array: &ArrayRef, field: &Field, row: usize) -> Result<SqlJson> {
    if is_null(array, row) {
        return Ok(SqlJson::Null);
    }
    let scalar = ScalarValue::try_from_array(array, row)?;
    sql_scalar(&scalar, json_kind(field))
}

fn sql_scalar(value: &ScalarValue, kind: Option<TaggedType>) -> Result<SqlJson> {
    use ScalarValue as S;
    if value.is_null() {
        return Ok(SqlJson::Null);
    }
    Ok(match value {
        S::Boolean(Some(b)) => SqlJson::Bool(*b),
        S::Int8(Some(_))
        | S::Int16(Some(_))
        | S::Int32(Some(_))
        | S::Int64(Some(_))
        | S::UInt8(Some(_))
        | S::UInt16(Some(_))
        | S::UInt32(Some(_))
        | S::UInt64(Some(_)) => SqlJson::Number(value.to_string()),
        S::Float32(Some(f)) => float(f64::from(*f)),
        S::Float64(Some(f)) => float(*f),
        S::Decimal128(Some(v), _, scale) => SqlJson::Number(decimal_text(*v, *scale)),
        S::Utf8(Some(s)) | S::Utf8View(Some(s)) | S::LargeUtf8(Some(s)) => match kind {
            Some(_) => SqlJson::Json(s.clone()),
            None => SqlJson::Text(s.clone()),
        },
        S::Date32(Some(days)) => {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| value.to_string());
            SqlJson::Text(date)
        }
        S::TimestampMicrosecond(Some(us), zone) => {
            let stamp = chrono::DateTime::from_timestamp_micros(*us)
                .map(|t| {
                    let fraction = if us.rem_euclid(1_000_000) == 0 {
                        ""
                    } else {
                        "%.6f"
                    };
                    let mut text = t
                        .naive_utc()
                        .format(&format!("%Y-%m-%dT%H:%M:%S{fraction}"))
                        .to_string();
                    // `.500000` is written `.5`, as PostgreSQL does.
                    if !fraction.is_empty() {
                        text.truncate(text.trim_end_matches('0').len());
                    }
                    if zone.is_some() {
                        text.push_str("+00:00");
                    }
                    text
                })
                .unwrap_or_else(|| value.to_string());
            SqlJson::Text(stamp)
        }
        // A row: an object of its fields (`row(...)`'s are PostgreSQL's
        // f1, f2, ...).
        S::Struct(row) => {
            let mut items = Vec::with_capacity(row.num_columns());
            for (i, (field, column)) in row.fields().iter().zip(row.columns()).enumerate() {
                let name = if field.name() == &format!("c{i}") {
                    format!("f{}", i + 1)
                } else {
                    field.name().clone()
                };
                let value = sql_value(column, field, 0)?;
                let mut item = String::new();
                json::write_string(&mut item, &name);
                item.push(':');
                item.push_str(&value.json_text());
                items.push(item);
            }
            SqlJson::Json(format!("{{{}}}", items.join(",")))
        }
        S::List(list) => {
            let items = list.value(0);
            let mut parts = Vec::with_capacity(items.len());
            for i in 0..items.len() {
                let item = ScalarValue::try_from_array(&items, i)?;
                parts.push(sql_scalar(&item, None)?.json_text());
            }
            SqlJson::Json(format!("[{}]", parts.join(",")))
        }
        S::IntervalMonthDayNano(Some(span)) => {
            SqlJson::Text(super::types::interval_text(*span, false))
        }
        other => SqlJson::Text(cast_text(other)?),
    })
}

fn float(f: f64) -> SqlJson {
    if f.is_finite() {
        SqlJson::Number(format!("{f}"))
    } else if f.is_nan() {
        SqlJson::Text("NaN".into())
    } else if f > 0.0 {
        SqlJson::Text("Infinity".into())
    } else {
        SqlJson::Text("-Infinity".into())
    }
}

fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        return (value * 10i128.pow(u32::from(scale.unsigned_abs()))).to_string();
    }
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{}{whole}.{fraction}", if value < 0 { "-" } else { "" })
}

fn cast_text(value: &ScalarValue) -> Result<String> {
    let array = value.to_array()?;
    let text = cast(&array, &DataType::Utf8)?;
    Ok(text.as_string::<i32>().value(0).to_string())
}

/// Plans the JSON operators when an operand is `json` or `jsonb`, and
/// reads a quoted literal compared with a `jsonb` value as `jsonb`.
#[derive(Debug, Default)]
pub struct JsonOperators;

impl ExprPlanner for JsonOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        // A cast is not JSON even where DataFusion keeps the source's tag
        // on it (`j::text || 'x'` is text); a CASE is what its branches are
        // (DataFusion's CASE drops the tag).
        fn kind(e: &Expr, schema: &DFSchema) -> Option<TaggedType> {
            match e {
                Expr::Cast(_) | Expr::TryCast(_) => None,
                Expr::Case(case) => case
                    .when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(case.else_expr.as_deref())
                    .find_map(|branch| kind(branch, schema)),
                _ => e
                    .to_field(schema as &dyn ExprSchema)
                    .ok()
                    .and_then(|(_, f)| json_kind(&f)),
            }
        }
        let kind = |e: &Expr| kind(e, schema);
        let (lk, rk) = (kind(&expr.left), kind(&expr.right));
        if lk.is_none() && rk.is_none() {
            // Operators only JSON has (`?` is a placeholder's only outside
            // of them): 42883 as PostgreSQL, not "not yet supported".
            let json_only = matches!(
                expr.op,
                BinaryOperator::Arrow
                    | BinaryOperator::LongArrow
                    | BinaryOperator::HashArrow
                    | BinaryOperator::HashLongArrow
                    | BinaryOperator::Question
                    | BinaryOperator::QuestionPipe
                    | BinaryOperator::QuestionAnd
                    | BinaryOperator::HashMinus
            );
            if json_only {
                let type_of = |e: &Expr| {
                    e.to_field(schema as &dyn ExprSchema)
                        .ok()
                        .and_then(|(_, f)| super::types::pg_type(&f).ok())
                        .map_or_else(|| "unknown".into(), |t| t.name().to_string())
                };
                return Err(DataFusionError::Plan(format!(
                    "operator does not exist: {} {} {}",
                    type_of(&expr.left),
                    expr.op,
                    type_of(&expr.right)
                )));
            }
            return Ok(PlannerResult::Original(expr));
        }
        let RawBinaryExpr { op, left, right } = expr;
        // A parameter beside a JSON operator has the type the operator
        // takes there (DataFusion infers parameters of comparisons only).
        let typed = |e: Expr, field: Field| match e {
            Expr::Placeholder(Placeholder { id, field: None }) => Expr::Placeholder(Placeholder {
                id,
                field: Some(Arc::new(field)),
            }),
            other => other,
        };
        let jsonb_param = |e: Expr| typed(e, tag_field("", TaggedType::Jsonb));
        let (left, right) = match op {
            BinaryOperator::HashArrow
            | BinaryOperator::HashLongArrow
            | BinaryOperator::HashMinus
            | BinaryOperator::QuestionPipe
            | BinaryOperator::QuestionAnd => {
                let texts = Field::new("", DataType::new_list(DataType::Utf8, true), true);
                (left, typed(right, texts))
            }
            BinaryOperator::AtArrow
            | BinaryOperator::ArrowAt
            | BinaryOperator::StringConcat
            | BinaryOperator::Eq
            | BinaryOperator::NotEq => (jsonb_param(left), jsonb_param(right)),
            _ => (left, right),
        };
        let (lk, rk) = (kind(&left), kind(&right));
        let call = |name: &str, args: Vec<Expr>| {
            let udf = FUNCTIONS
                .iter()
                .find(|(f, _, _)| *f == name)
                .map(json_function)
                .expect("a json function");
            Ok(PlannerResult::Planned(Expr::ScalarFunction(
                ScalarFunction::new_udf(Arc::new(udf), args),
            )))
        };
        let jsonb = |e: Expr, k: Option<TaggedType>| match k {
            Some(TaggedType::Jsonb) => e,
            _ => as_jsonb(e),
        };
        match op {
            BinaryOperator::Arrow if lk.is_some() => call("pg_json_get", vec![left, right]),
            BinaryOperator::LongArrow if lk.is_some() => {
                call("pg_json_get_text", vec![left, right])
            }
            BinaryOperator::HashArrow if lk.is_some() => call("pg_json_path", vec![left, right]),
            BinaryOperator::HashLongArrow if lk.is_some() => {
                call("pg_json_path_text", vec![left, right])
            }
            BinaryOperator::Question if lk == Some(TaggedType::Jsonb) => {
                call("pg_jsonb_exists", vec![left, right])
            }
            BinaryOperator::QuestionPipe if lk == Some(TaggedType::Jsonb) => {
                call("pg_jsonb_exists_any", vec![left, right])
            }
            BinaryOperator::QuestionAnd if lk == Some(TaggedType::Jsonb) => {
                call("pg_jsonb_exists_all", vec![left, right])
            }
            BinaryOperator::AtArrow => {
                call("pg_jsonb_contains", vec![jsonb(left, lk), jsonb(right, rk)])
            }
            BinaryOperator::ArrowAt => {
                call("pg_jsonb_contains", vec![jsonb(right, rk), jsonb(left, lk)])
            }
            BinaryOperator::StringConcat
                if lk == Some(TaggedType::Jsonb) || rk == Some(TaggedType::Jsonb) =>
            {
                call("pg_jsonb_concat", vec![jsonb(left, lk), jsonb(right, rk)])
            }
            BinaryOperator::Minus if lk == Some(TaggedType::Jsonb) => {
                call("pg_jsonb_delete", vec![left, right])
            }
            BinaryOperator::HashMinus if lk == Some(TaggedType::Jsonb) => {
                call("pg_jsonb_delete_path", vec![left, right])
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
                if lk == Some(TaggedType::Jsonb) || rk == Some(TaggedType::Jsonb) =>
            {
                // `j = '{"b": 1, "a": 2}'`: the literal is jsonb, in its
                // canonical text like the column's values.
                let literal = |e: Expr, k: Option<TaggedType>| {
                    if k.is_none() && is_text_literal(&e) {
                        as_jsonb(e)
                    } else {
                        e
                    }
                };
                Ok(PlannerResult::Original(RawBinaryExpr {
                    op,
                    left: literal(left, lk),
                    right: literal(right, rk),
                }))
            }
            op => Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        }
    }
}

fn is_text_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Literal(
            ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)),
            _
        )
    )
}

/// `e::jsonb`.
fn as_jsonb(e: Expr) -> Expr {
    let udf = super::pg_types_in::text_type_udfs()
        .into_iter()
        .find(|f| f.name() == "pg_jsonb_in")
        .expect("pg_jsonb_in");
    let text = match &e {
        Expr::Literal(..) => e,
        _ => Expr::Cast(datafusion::logical_expr::Cast::new(
            Box::new(e),
            DataType::Utf8,
        )),
    };
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), vec![text]))
}

/// `jsonb_agg(x ORDER BY y) FILTER (WHERE c)` as
/// `pg_jsonb_array_of(array_agg(to_jsonb(x) ORDER BY y) FILTER (WHERE c))`
/// (DataFusion's `array_agg` brings ORDER BY, DISTINCT and FILTER), and
/// `jsonb_object_agg(k, v)` over `pg_jsonb_pair(k, v)`; likewise for
/// `json_agg` and `json_object_agg`. The column keeps the aggregate's name
/// (column names are taken before this runs).
pub fn rewrite_aggregate(expr: &mut SqlExpr) {
    let SqlExpr::Function(f) = expr else {
        return;
    };
    if f.over.is_some() || f.name.0.len() != 1 {
        return;
    }
    let name = f.name.to_string().to_ascii_lowercase();
    let (element, finish) = match name.as_str() {
        "jsonb_agg" => ("to_jsonb", "pg_jsonb_array_of"),
        "json_agg" => ("to_json", "pg_json_array_of"),
        "jsonb_object_agg" => ("pg_jsonb_pair", "pg_jsonb_object_of"),
        "json_object_agg" => ("pg_json_pair", "pg_json_object_of"),
        _ => return,
    };
    let FunctionArguments::List(list) = &mut f.args else {
        return;
    };
    // Plain arguments, or a whole row (`t.*`, see `super::whole_rows`).
    let Some(args) = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(
                arg @ (FunctionArgExpr::Expr(_) | FunctionArgExpr::QualifiedWildcard(_)),
            ) => Some(FunctionArg::Unnamed(arg.clone())),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let mut element_call = super::function_call(element, vec![], vec![]);
    if let SqlExpr::Function(call) = &mut element_call {
        if let FunctionArguments::List(list) = &mut call.args {
            list.args = args;
        }
    }
    let clauses = std::mem::take(&mut list.clauses)
        .into_iter()
        .filter(|c| matches!(c, FunctionArgumentClause::OrderBy(_)))
        .collect();
    let rows = list.args.first().is_some_and(|a| {
        matches!(
            a,
            FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(_))
        )
    });
    let mut aggregate = super::function_call("array_agg", vec![element_call], clauses);
    if let SqlExpr::Function(agg) = &mut aggregate {
        agg.filter = f.filter.take();
        if let FunctionArguments::List(agg_list) = &mut agg.args {
            agg_list.duplicate_treatment = list.duplicate_treatment.take();
        }
    }
    let mut finish_args = vec![aggregate];
    if rows {
        finish_args.push(SqlExpr::Value(
            datafusion::sql::sqlparser::ast::Value::Boolean(true).into(),
        ));
    }
    *expr = super::function_call(finish, finish_args, vec![]);
}

/// The function that gives the values a set-returning `function` yields
/// their type back after DataFusion's unnest, which drops it.
pub fn element_tag(function: &str) -> Option<&'static str> {
    match function {
        "jsonb_array_elements" => Some("pg_jsonb_tag"),
        "json_array_elements" => Some("pg_json_tag"),
        _ => None,
    }
}

/// The set-returning JSON functions, expanded in a select list as
/// `generate_series` is.
pub const SET_RETURNING: &[&str] = &[
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "json_array_elements",
    "json_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
];

/// `FROM jsonb_array_elements('[1, 2]')`, `FROM jsonb_each(...)` and the
/// other set-returning JSON functions as a table, for a constant argument
/// (evaluated when the query is planned). Over a column of another table
/// of the same FROM (a lateral call) they are refused with a pointer to
/// the select-list form, which works per row.
#[derive(Debug)]
struct JsonTable {
    name: &'static str,
    op: Op,
    jsonb: bool,
    /// `jsonb_each` (key and value) rather than one column.
    each: bool,
}

/// The JSON functions that can stand in FROM.
pub const TABLE_FUNCTIONS: &[&str] = &[
    "jsonb_array_elements",
    "json_array_elements",
    "jsonb_array_elements_text",
    "json_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
    "jsonb_each",
    "json_each",
    "jsonb_each_text",
    "json_each_text",
];

/// The argument the rewrite of `WITH ORDINALITY` adds to a JSON table
/// function's call.
pub const ORDINALITY: &str = "\u{0}with ordinality";

/// The table functions, for registering with a session.
pub fn register_table_functions(ctx: &datafusion::execution::context::SessionContext) {
    let functions: &[(&'static str, Op, bool, bool)] = &[
        ("jsonb_array_elements", Op::ArrayElements, true, false),
        ("json_array_elements", Op::ArrayElements, false, false),
        (
            "jsonb_array_elements_text",
            Op::ArrayElementsText,
            true,
            false,
        ),
        (
            "json_array_elements_text",
            Op::ArrayElementsText,
            false,
            false,
        ),
        ("jsonb_object_keys", Op::ObjectKeys, true, false),
        ("json_object_keys", Op::ObjectKeys, false, false),
        ("jsonb_each", Op::ArrayElements, true, true),
        ("json_each", Op::ArrayElements, false, true),
        ("jsonb_each_text", Op::ArrayElementsText, true, true),
        ("json_each_text", Op::ArrayElementsText, false, true),
    ];
    for &(name, op, jsonb, each) in functions {
        ctx.register_udtf(
            name,
            Arc::new(JsonTable {
                name,
                op,
                jsonb,
                each,
            }),
        );
    }
}

impl datafusion::catalog::TableFunctionImpl for JsonTable {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        use datafusion::arrow::array::RecordBatch;
        use datafusion::arrow::datatypes::Schema;
        let ordinality_marker = Expr::Literal(ScalarValue::Utf8(Some(ORDINALITY.into())), None);
        let (arg, ordinality) = match args.exprs() {
            [arg] => (arg, false),
            [arg, marker] if *marker == ordinality_marker => (arg, true),
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "function {} takes one argument",
                    self.name
                )))
            }
        };
        // Evaluated now, while the query is planned: a column of another
        // table, or a parameter bound later, has no value yet.
        let placeholder = arg.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))?;
        let outer = arg.exists(|e| Ok(matches!(e, Expr::OuterReferenceColumn(..))))?;
        if !arg.column_refs().is_empty() || outer || placeholder {
            let over = if placeholder {
                "a parameter"
            } else {
                "a column"
            };
            return Err(failed(QuiverError::FeatureNotSupported(format!(
                "{} over {over} in FROM is not supported; call it in the select list \
                 (SELECT {}(...)), which gives one row per element",
                self.name, self.name
            ))));
        }
        let empty = DFSchema::empty();
        let physical = args.session().create_physical_expr(arg.clone(), &empty)?;
        let one_row = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let value = physical.evaluate(&one_row)?.into_array(1)?;
        let doc = texts(&value)?;
        let raw_json = !self.jsonb;
        let value_field = |name: &str| {
            if self.op == Op::ArrayElementsText {
                Field::new(name, DataType::Utf8, true)
            } else {
                tag_field(name, json_tag(self.jsonb))
            }
        };
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = match doc.get(0) {
            _ if self.each => {
                let (keys, values) = match doc.get(0) {
                    Some(d) => {
                        each_items(d, raw_json, self.op == Op::ArrayElementsText, self.name)?
                    }
                    None => (vec![], vec![]),
                };
                (
                    vec![
                        Field::new("key", DataType::Utf8, false),
                        value_field("value"),
                    ],
                    vec![
                        Arc::new(datafusion::arrow::array::StringArray::from(keys)),
                        Arc::new(datafusion::arrow::array::StringArray::from(values)),
                    ],
                )
            }
            d => {
                let items = match d {
                    Some(d) => set_items(self.op, d, raw_json)?,
                    None => vec![],
                };
                let field = if self.op == Op::ObjectKeys {
                    Field::new(self.name, DataType::Utf8, true)
                } else {
                    value_field("value")
                };
                (
                    vec![field],
                    vec![Arc::new(datafusion::arrow::array::StringArray::from(items))],
                )
            }
        };
        let (mut fields, mut columns) = (fields, columns);
        if ordinality {
            let rows = columns[0].len() as i64;
            fields.push(Field::new("ordinality", DataType::Int64, false));
            columns.push(Arc::new(
                datafusion::arrow::array::Int64Array::from_iter_values(1..=rows),
            ));
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?))
    }
}

/// `jsonb_each`'s rows: each member's key and value (as text for the
/// `_text` variants: a string's contents, NULL for a JSON null).
fn each_items(
    doc: &str,
    raw_json: bool,
    text: bool,
    name: &str,
) -> Result<(Vec<String>, Vec<Option<String>>)> {
    let not_object = || invalid(format!("cannot call {name} on a non-object"));
    let as_text = |v: &Json| {
        if text {
            v.to_text()
        } else {
            Some(v.to_jsonb_text())
        }
    };
    if raw_json {
        let Pieces::Object(members) = json::pieces(doc).map_err(failed)? else {
            return Err(not_object());
        };
        let mut keys = Vec::with_capacity(members.len());
        let mut values = Vec::with_capacity(members.len());
        for (k, v) in members {
            keys.push(k.into_owned());
            values.push(if text {
                raw_text(v)?
            } else {
                Some(v.to_string())
            });
        }
        return Ok((keys, values));
    }
    let Json::Object(members) = parse_jsonb(doc)? else {
        return Err(not_object());
    };
    Ok(members
        .iter()
        .map(|(k, v)| (k.to_string(), as_text(v)))
        .unzip())
}
