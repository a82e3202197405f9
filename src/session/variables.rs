//! SET, SHOW and RESET: Postgres session parameters, and DataFusion's own
//! options under `datafusion.*`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, Reset, ResetStatement, Set, Statement, Value, ValueWithSpan,
};

use super::{object_name_parts, settings, Session, StatementResult};
use crate::error::{not_supported, QuiverError, Result};

impl Session {
    pub(super) fn set(&mut self, set: &Set) -> Result<StatementResult> {
        let (variable, values) = match set {
            Set::SingleAssignment {
                variable, values, ..
            } => (object_name_parts(variable)?.join("."), values),
            Set::SetTimeZone { value, .. } => {
                let value = setting_value(std::slice::from_ref(value));
                // SET TIME ZONE LOCAL | DEFAULT: the server's zone.
                if value.eq_ignore_ascii_case("local") || value.eq_ignore_ascii_case("default") {
                    let key = self.settings.reset("TimeZone")?;
                    self.after_setting_change(key);
                    return Ok(StatementResult::command("SET"));
                }
                return self.set_named("TimeZone", &value);
            }
            Set::SetTransaction { modes, session, .. } => {
                return self.set_transaction(modes, *session);
            }
            other => return Err(not_supported(format!("\"{other}\""))),
        };
        let value = setting_value(values);
        self.set_value(&variable, value)
    }

    /// `SET variable = value` (and `set_config`): DataFusion's own options
    /// under `datafusion.*`, DEFAULT, or a PostgreSQL parameter.
    pub(super) fn set_value(&mut self, variable: &str, value: String) -> Result<StatementResult> {
        if let Some(df_key) = variable.strip_prefix("datafusion.") {
            let key = format!("datafusion.{df_key}");
            self.change_df_state(|state| state.config_mut().options_mut().set(&key, &value))
                .map_err(|_| QuiverError::InvalidSettingValue { name: key, value })?;
            return Ok(StatementResult::command("SET"));
        }
        if value.eq_ignore_ascii_case("default") {
            let key = self.settings.reset(variable)?;
            self.after_setting_change(key);
            return Ok(StatementResult::command("SET"));
        }
        self.set_named(variable, &value)
    }

    /// `SET [SESSION CHARACTERISTICS AS] TRANSACTION ISOLATION LEVEL ...`.
    /// Every transaction reads one snapshot and fails with 40001 on a
    /// write conflict, which satisfies each level Postgres offers (as in
    /// Postgres, READ UNCOMMITTED behaves as READ COMMITTED or better);
    /// the level is recorded so SHOW reports it.
    fn set_transaction(
        &mut self,
        modes: &[datafusion::sql::sqlparser::ast::TransactionMode],
        session: bool,
    ) -> Result<StatementResult> {
        use datafusion::sql::sqlparser::ast::{
            TransactionAccessMode, TransactionIsolationLevel as L, TransactionMode,
        };
        for mode in modes {
            match mode {
                TransactionMode::IsolationLevel(level) => {
                    let name = match level {
                        L::ReadUncommitted => "read uncommitted",
                        L::ReadCommitted => "read committed",
                        L::RepeatableRead => "repeatable read",
                        L::Serializable => "serializable",
                        L::Snapshot => "repeatable read",
                    };
                    if session {
                        self.set_named("default_transaction_isolation", name)?;
                    }
                }
                TransactionMode::AccessMode(TransactionAccessMode::ReadWrite) => {}
                TransactionMode::AccessMode(TransactionAccessMode::ReadOnly) => {
                    return Err(not_supported("READ ONLY transactions"));
                }
            }
        }
        Ok(StatementResult::command("SET"))
    }

    /// Applies a setting a client sent in its start-up packet.
    pub fn apply_startup_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.set_named(name, value)?;
        // The client is told every reported value right after start-up.
        self.changed.clear();
        Ok(())
    }

    /// `RESET name`, or `RESET ALL` for None.
    pub(super) fn reset(&mut self, name: Option<String>) -> Result<StatementResult> {
        match name {
            None => {
                self.settings.reset_all();
                for name in settings::REPORTED {
                    self.after_setting_change(name);
                }
                self.after_setting_change("search_path");
            }
            Some(name) => {
                let key = self.settings.reset(&name)?;
                self.after_setting_change(key);
            }
        }
        Ok(StatementResult::command("RESET"))
    }

    pub(super) fn set_named(&mut self, name: &str, value: &str) -> Result<StatementResult> {
        let key = self.settings.set(name, value)?;
        self.after_setting_change(key);
        Ok(StatementResult::command("SET"))
    }

    pub(super) fn after_setting_change(&mut self, key: &'static str) {
        if key == "search_path" {
            let schema = self.default_schema();
            self.change_df_state(|state| {
                state.config_mut().options_mut().catalog.default_schema = schema
            });
        }
        if key == "TimeZone" || key == "DateStyle" {
            self.apply_time_zone();
        }
        if settings::REPORTED.contains(&key) {
            let value = self.settings.get(key).unwrap_or_default().to_string();
            self.changed.push((key, value));
        }
        self.publish_settings();
    }

    /// Gives the planner the zone of the TimeZone setting and the
    /// DateStyle.
    pub(super) fn apply_time_zone(&mut self) {
        let name = self.settings.get("TimeZone").unwrap_or("UTC");
        let zone =
            crate::sql::pg_timezone::parse_zone(name).unwrap_or_else(crate::sql::pg_timezone::utc);
        if let Ok(mut handle) = self.zone.write() {
            *handle = zone;
        }
        let style = crate::sql::pg_datestyle::DateStyle::parse(
            self.settings.get("DateStyle").unwrap_or("ISO, MDY"),
        );
        if let Ok(mut handle) = self.date_style.write() {
            *handle = style;
        }
    }

    /// The session's DateStyle.
    pub(super) fn date_style(&self) -> crate::sql::pg_datestyle::DateStyle {
        self.date_style.read().map(|s| *s).unwrap_or_default()
    }

    /// The session's time zone as Arrow names it.
    pub(super) fn arrow_zone(&self) -> String {
        self.zone
            .read()
            .map(|z| z.arrow.clone())
            .unwrap_or_else(|_| "UTC".into())
    }

    /// Tells the system catalog (`current_schema()`, `pg_settings`) the
    /// session's settings.
    pub(super) fn publish_settings(&mut self) {
        let all = self
            .settings
            .all()
            .map(|(n, v, d)| (n.to_string(), v.to_string(), d.to_string()))
            .collect();
        self.info.set_settings(self.settings.search_path(), all);
    }

    pub(super) fn show(&self, variable: &[Ident]) -> Result<StatementResult> {
        // The parser splits `time zone` and `datafusion.execution.batch_size`
        // alike into words.
        let words: Vec<&str> = variable.iter().map(|i| i.value.as_str()).collect();
        let spaced = words.join(" ");
        let name = match spaced.to_ascii_lowercase().as_str() {
            "time zone" | "transaction isolation level" | "session authorization" => spaced,
            _ => words.join("."),
        };
        if name.eq_ignore_ascii_case("all") {
            let server = self.db.server_settings();
            let mut rows: Vec<(&str, &str, &str)> = self.settings.all().collect();
            rows.extend(
                server
                    .iter()
                    .map(|(n, v, d)| (n.as_str(), v.as_str(), d.as_str())),
            );
            let schema = Arc::new(Schema::new(vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("setting", DataType::Utf8, false),
                Field::new("description", DataType::Utf8, false),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            return Ok(StatementResult::Rows {
                schema,
                batches: vec![batch],
                tag: "SELECT",
            });
        }
        let name = match name.to_ascii_lowercase().as_str() {
            "time zone" => "TimeZone".to_string(),
            "transaction isolation level" => "transaction_isolation".to_string(),
            _ => name,
        };
        let value = if let Some(key) = name.strip_prefix("datafusion.") {
            let key = format!("datafusion.{key}");
            let options = self.df_state().config_options().clone();
            options
                .entries()
                .into_iter()
                .find(|e| e.key == key)
                .map(|e| e.value.unwrap_or_default())
                .ok_or(QuiverError::UnknownSetting(key))?
        } else {
            match self.settings.get(&name) {
                Ok(value) => value.to_string(),
                Err(e) => self
                    .db
                    .server_settings()
                    .into_iter()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v, _)| v)
                    .ok_or(e)?,
            }
        };
        let column = settings::show_name(&name);
        let schema = Arc::new(Schema::new(vec![Field::new(
            &column,
            DataType::Utf8,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(vec![value])) as ArrayRef],
        )?;
        Ok(StatementResult::Rows {
            schema,
            batches: vec![batch],
            tag: "SELECT",
        })
    }
}

/// The text of a SET value: identifiers and strings alike, as Postgres
/// accepts `SET x = foo`, `SET x = 'foo'` and `SET x TO a, b`.
fn setting_value(values: &[datafusion::sql::sqlparser::ast::Expr]) -> String {
    use datafusion::sql::sqlparser::ast::Expr;
    values
        .iter()
        .map(|v| match v {
            Expr::Value(ValueWithSpan {
                value: Value::SingleQuotedString(s) | Value::DoubleQuotedString(s),
                ..
            }) => s.clone(),
            Expr::Value(ValueWithSpan { value, .. }) => value.to_string(),
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Columns of statements we execute ourselves that return rows (SHOW).
pub(super) fn own_statement_schema(statement: &DfStatement) -> Option<SchemaRef> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::ShowVariable { variable } = s.as_ref() else {
        return None;
    };
    let name = variable
        .iter()
        .map(|i| i.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let fields = if name == "all" {
        vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("setting", DataType::Utf8, false),
            Field::new("description", DataType::Utf8, false),
        ]
    } else {
        let name = match name.as_str() {
            "time zone" => "timezone".to_string(),
            "transaction isolation level" => "transaction_isolation".to_string(),
            _ => name,
        };
        vec![Field::new(
            settings::show_name(&name),
            DataType::Utf8,
            false,
        )]
    };
    Some(Arc::new(Schema::new(fields)))
}

impl Session {
    /// `RESET name` as DataFusion parses it (`RESET TIME ZONE` arrives as
    /// the name `time.zone`).
    pub(super) fn reset_variable(&mut self, name: &ObjectName) -> Result<StatementResult> {
        let mut name = object_name_parts(name)?.join(".");
        if name.eq_ignore_ascii_case("time.zone") {
            name = "TimeZone".into();
        }
        if name.eq_ignore_ascii_case("all") {
            self.reset(None)
        } else {
            self.reset(Some(name))
        }
    }

    /// `RESET name` or `RESET ALL` as the SQL parser reads it.
    pub(super) fn reset_statement(&mut self, reset: &ResetStatement) -> Result<StatementResult> {
        match &reset.reset {
            Reset::ALL => self.reset(None),
            Reset::ConfigurationParameter(name) => {
                self.reset(Some(object_name_parts(name)?.join(".")))
            }
        }
    }

    /// DEALLOCATE: the wire layer drops the statement named.
    pub(super) fn deallocate(&mut self, name: &Ident) -> StatementResult {
        if name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none() {
            // The wire layer's statements are not listed here; a client
            // that deallocates all of them re-prepares under the same
            // names, which replaces them.
            StatementResult::command("DEALLOCATE ALL")
        } else {
            self.deallocated.push(name.value.clone());
            StatementResult::command("DEALLOCATE")
        }
    }

    /// DISCARD: ALL puts the session's settings back to their defaults,
    /// forgets its sequence values (SEQUENCES alone does that) and drops
    /// its temporary tables (TEMP alone does that); PLANS has nothing to
    /// drop (plans are made per statement).
    pub(super) fn discard(
        &mut self,
        what: datafusion::sql::sqlparser::ast::DiscardObject,
    ) -> Result<StatementResult> {
        use datafusion::sql::sqlparser::ast::DiscardObject;
        Ok(StatementResult::command(match what {
            DiscardObject::ALL => {
                if self.txn.is_some() {
                    return Err(QuiverError::ActiveTransaction(
                        "DISCARD ALL cannot run inside a transaction block".into(),
                    ));
                }
                self.reset(None)?;
                self.handle.sequences.discard();
                self.close_all_cursors();
                self.db.advisory().unlock_all(self.lock_holder(false));
                self.info.unlisten(None);
                self.drop_temporary_tables();
                "DISCARD ALL"
            }
            DiscardObject::SEQUENCES => {
                self.handle.sequences.discard();
                "DISCARD SEQUENCES"
            }
            DiscardObject::PLANS => "DISCARD PLANS",
            DiscardObject::TEMP => {
                self.drop_temporary_tables();
                "DISCARD TEMP"
            }
        }))
    }
}
