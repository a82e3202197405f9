//! What Flight SQL clients ask about the server and its catalog: GetSqlInfo
//! (who we are, what SQL and transactions we have), GetXdbcTypeInfo (our
//! types as JDBC/ODBC name them), and the key listings, whose schemas the
//! specification fixes. Catalog rows come from `information_schema`, read
//! through the client's own session, so a client sees what its privileges
//! let it see, as psql would.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedGroupBy, SqlSupportedSubqueries,
    SqlSupportedTransaction, SqlSupportedUnions, SqlTransactionIsolationLevel, SupportedSqlGrammar,
    XdbcDataType, XdbcDatetimeSubcode,
};
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray, UInt8Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

/// What GetSqlInfo answers.
pub static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "QuiverDB");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::Savepoint as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, true);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, true);
    b.append(SqlInfo::SqlDdlTable, true);
    b.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlExtraNameCharacters, "");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlNullPlusNullIsNull, true);
    b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, true);
    b.append(
        SqlInfo::SqlSupportedGrammar,
        (1 << SupportedSqlGrammar::SqlMinimumGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlCoreGrammar as i32),
    );
    b.append(
        SqlInfo::SqlKeywords,
        &[
            "ANALYSE",
            "CHECKPOINT",
            "ILIKE",
            "LIMIT",
            "NOTIFY",
            "OFFSET",
            "RETURNING",
            "VACUUM",
        ][..],
    );
    b.append(
        SqlInfo::SqlNumericFunctions,
        &[
            "abs", "ceil", "floor", "round", "trunc", "mod", "power", "sqrt", "exp", "ln", "log",
            "random", "sign", "pi",
        ][..],
    );
    b.append(
        SqlInfo::SqlStringFunctions,
        &[
            "length",
            "lower",
            "upper",
            "substring",
            "position",
            "trim",
            "replace",
            "concat",
            "left",
            "right",
            "lpad",
            "rpad",
            "split_part",
            "regexp_replace",
        ][..],
    );
    b.append(
        SqlInfo::SqlSystemFunctions,
        &[
            "current_user",
            "current_database",
            "current_schema",
            "version",
            "pg_backend_pid",
        ][..],
    );
    b.append(
        SqlInfo::SqlDatetimeFunctions,
        &[
            "now",
            "current_date",
            "current_timestamp",
            "date_trunc",
            "extract",
            "date_part",
            "to_char",
            "to_timestamp",
            "age",
        ][..],
    );
    b.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    b.append(
        SqlInfo::SqlSupportedGroupBy,
        (1 << SqlSupportedGroupBy::SqlGroupByUnrelated as i32)
            | (1 << SqlSupportedGroupBy::SqlGroupByBeyondSelect as i32),
    );
    b.append(
        SqlInfo::SqlSupportedSubqueries,
        (1 << SqlSupportedSubqueries::SqlSubqueriesInComparisons as i32)
            | (1 << SqlSupportedSubqueries::SqlSubqueriesInExists as i32)
            | (1 << SqlSupportedSubqueries::SqlSubqueriesInIns as i32)
            | (1 << SqlSupportedSubqueries::SqlSubqueriesInQuantifieds as i32),
    );
    b.append(
        SqlInfo::SqlSupportedUnions,
        (1 << SqlSupportedUnions::SqlUnion as i32) | (1 << SqlSupportedUnions::SqlUnionAll as i32),
    );
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlProcedureTerm, "function");
    b.append(SqlInfo::SqlCatalogTerm, "database");
    b.append(SqlInfo::SqlCatalogAtStart, true);
    b.append(SqlInfo::SqlSelectForUpdateSupported, false);
    b.append(SqlInfo::SqlStoredProceduresSupported, false);
    b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    b.append(SqlInfo::SqlMaxColumnsInTable, 1600i64);
    b.append(SqlInfo::SqlMaxColumnNameLength, 63i64);
    b.append(SqlInfo::SqlMaxTableNameLength, 63i64);
    b.append(SqlInfo::SqlDbSchemaNameLength, 63i64);
    b.append(
        SqlInfo::SqlDefaultTransactionIsolation,
        SqlTransactionIsolationLevel::SqlTransactionRepeatableRead as i32,
    );
    b.append(SqlInfo::SqlTransactionsSupported, true);
    b.append(
        SqlInfo::SqlSupportedTransactionsIsolationLevels,
        (1 << SqlTransactionIsolationLevel::SqlTransactionReadCommitted as i32)
            | (1 << SqlTransactionIsolationLevel::SqlTransactionRepeatableRead as i32)
            | (1 << SqlTransactionIsolationLevel::SqlTransactionSerializable as i32),
    );
    b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    b.append(SqlInfo::SqlBatchUpdatesSupported, true);
    b.append(SqlInfo::SqlSavepointsSupported, true);
    b.append(SqlInfo::SqlNamedParametersSupported, false);
    b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    b.build()
        .expect("the SQL info values have their declared types")
});

fn xdbc(
    type_name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    quoted: bool,
    subcode: Option<XdbcDatetimeSubcode>,
) -> XdbcTypeInfo {
    let numeric = matches!(
        data_type,
        XdbcDataType::XdbcSmallint
            | XdbcDataType::XdbcInteger
            | XdbcDataType::XdbcBigint
            | XdbcDataType::XdbcReal
            | XdbcDataType::XdbcDouble
            | XdbcDataType::XdbcNumeric
    );
    let (sql_data_type, datetime_subcode) = match subcode {
        Some(code) => (XdbcDataType::XdbcDatetime, Some(code)),
        None => (data_type, None),
    };
    XdbcTypeInfo {
        type_name: type_name.into(),
        data_type,
        column_size,
        literal_prefix: quoted.then(|| "'".into()),
        literal_suffix: quoted.then(|| "'".into()),
        create_params: match data_type {
            XdbcDataType::XdbcNumeric => Some(vec!["precision".into(), "scale".into()]),
            XdbcDataType::XdbcVarchar | XdbcDataType::XdbcChar => Some(vec!["length".into()]),
            _ => None,
        },
        nullable: Nullable::NullabilityNullable,
        case_sensitive: quoted && !numeric && subcode.is_none(),
        searchable: Searchable::Full,
        unsigned_attribute: numeric.then_some(false),
        fixed_prec_scale: false,
        auto_increment: numeric.then_some(false),
        local_type_name: Some(type_name.into()),
        minimum_scale: (data_type == XdbcDataType::XdbcNumeric).then_some(0),
        maximum_scale: (data_type == XdbcDataType::XdbcNumeric).then_some(38),
        sql_data_type,
        datetime_subcode,
        num_prec_radix: numeric.then_some(10),
        interval_precision: None,
    }
}

/// What GetXdbcTypeInfo answers: the column types CREATE TABLE takes.
pub static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    use XdbcDataType as X;
    use XdbcDatetimeSubcode as S;
    let mut b = XdbcTypeInfoDataBuilder::new();
    for info in [
        xdbc("boolean", X::XdbcBit, Some(1), false, None),
        xdbc("smallint", X::XdbcSmallint, Some(5), false, None),
        xdbc("integer", X::XdbcInteger, Some(10), false, None),
        xdbc("bigint", X::XdbcBigint, Some(19), false, None),
        xdbc("real", X::XdbcReal, Some(8), false, None),
        xdbc("double precision", X::XdbcDouble, Some(17), false, None),
        xdbc("numeric", X::XdbcNumeric, Some(38), false, None),
        xdbc("text", X::XdbcLongvarchar, None, true, None),
        xdbc("varchar", X::XdbcVarchar, None, true, None),
        xdbc("char", X::XdbcChar, None, true, None),
        xdbc("bytea", X::XdbcVarbinary, None, true, None),
        xdbc(
            "date",
            X::XdbcDate,
            Some(10),
            true,
            Some(S::XdbcSubcodeYear),
        ),
        xdbc(
            "time",
            X::XdbcTime,
            Some(15),
            true,
            Some(S::XdbcSubcodeTime),
        ),
        xdbc(
            "timestamp",
            X::XdbcTimestamp,
            Some(26),
            true,
            Some(S::XdbcSubcodeTimestamp),
        ),
        xdbc(
            "timestamptz",
            X::XdbcTimestamp,
            Some(32),
            true,
            Some(S::XdbcSubcodeTimestampWithTimezone),
        ),
        xdbc("interval", X::XdbcInterval, None, true, None),
        xdbc("uuid", X::XdbcVarchar, Some(36), true, None),
        xdbc("jsonb", X::XdbcLongvarchar, None, true, None),
    ] {
        b.append(info);
    }
    b.build().expect("the type list is well formed")
});

/// GetPrimaryKeys' columns, as the specification fixes them.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// GetImportedKeys', GetExportedKeys' and GetCrossReference's columns.
pub fn keys_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("pk_catalog_name", true),
        text("pk_db_schema_name", true),
        text("pk_table_name", false),
        text("pk_column_name", false),
        text("fk_catalog_name", true),
        text("fk_db_schema_name", true),
        text("fk_table_name", false),
        text("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        text("fk_key_name", true),
        text("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// A table of text rows (SQL answers read as strings) in `schema`, whose
/// Int32 and UInt8 columns are read from the text.
pub fn text_table(schema: SchemaRef, rows: &[Vec<Option<String>>]) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| -> ArrayRef {
            let values = rows.iter().map(|r| r.get(i).cloned().flatten());
            match field.data_type() {
                DataType::Int32 => Arc::new(
                    values
                        .map(|v| v.and_then(|v| v.parse::<i32>().ok()).or(Some(0)))
                        .collect::<Int32Array>(),
                ),
                DataType::UInt8 => Arc::new(
                    values
                        .map(|v| Some(update_delete_rule(v.as_deref())))
                        .collect::<UInt8Array>(),
                ),
                _ => Arc::new(
                    values
                        .map(|v| v.or_else(|| (!field.is_nullable()).then(String::new)))
                        .collect::<StringArray>(),
                ),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("columns built for this schema")
}

/// The specification's UpdateDeleteRules code for information_schema's
/// rule text.
fn update_delete_rule(rule: Option<&str>) -> u8 {
    match rule {
        Some("CASCADE") => 0,
        Some("RESTRICT") => 1,
        Some("SET NULL") => 2,
        Some("SET DEFAULT") => 4,
        _ => 3, // NO ACTION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_names_itself_and_its_types() {
        let batch = SQL_INFO
            .record_batch([SqlInfo::FlightSqlServerName as u32])
            .unwrap();
        assert_eq!(batch.num_rows(), 1);
        let types = XDBC_TYPES.record_batch(None).unwrap();
        assert!(types.num_rows() >= 15);
        let keys = text_table(
            keys_schema(),
            &[vec![
                None,
                Some("public".into()),
                Some("a".into()),
                Some("id".into()),
                None,
                Some("public".into()),
                Some("b".into()),
                Some("a_id".into()),
                Some("1".into()),
                Some("b_a_id_fkey".into()),
                Some("a_pkey".into()),
                Some("CASCADE".into()),
                Some("NO ACTION".into()),
            ]],
        );
        assert_eq!(keys.num_rows(), 1);
    }
}
