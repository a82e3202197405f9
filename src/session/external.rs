//! `CREATE EXTERNAL TABLE name [(columns)] STORED AS parquet|csv|json|arrow
//! [PARTITIONED BY (...)] [OPTIONS (...)] LOCATION '/path'`: DataFusion's
//! statement for querying files in place. Nothing is loaded: the files are
//! read by each query, so the table always shows their current contents.
//!
//! The definition is kept in the catalog as a view whose plan scans
//! DataFusion's listing table. It is logged, checkpointed and recovered
//! like a view, and dropped with `DROP TABLE` or `DROP VIEW`. Reading
//! server files is for superusers (see `security`); others may be granted
//! SELECT on the table, as on a view.

use datafusion::datasource::listing_table_factory::ListingTableFactory;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::{CreateExternalTable, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Value;

use super::{Session, StatementResult};
use crate::engine::catalog::View;
use crate::engine::commit::ViewDef;
use crate::error::{QuiverError, Result};

impl Session {
    pub(super) async fn create_external_table(
        &mut self,
        create: &CreateExternalTable,
    ) -> Result<StatementResult> {
        let unsupported = |what: &str| {
            Err(QuiverError::FeatureNotSupported(format!(
                "CREATE EXTERNAL TABLE ... {what} is not supported; QuiverDB reads the files as they are"
            )))
        };
        if create.unbounded {
            return unsupported("UNBOUNDED");
        }
        if !create.order_exprs.is_empty() {
            return unsupported("WITH ORDER");
        }
        if !create.constraints.is_empty() {
            return unsupported("with constraints");
        }
        if create.temporary {
            return unsupported("TEMPORARY");
        }
        for location in &create.locations {
            check_location(location)?;
        }
        let name = self.qualified_new(&create.name)?;
        if create.if_not_exists && self.relation_exists(&name) {
            return Ok(StatementResult::command("CREATE EXTERNAL TABLE"));
        }
        let def = ViewDef {
            schema: name.schema.clone(),
            name: name.name.clone(),
            query: definition_sql(create),
            columns: Vec::new(),
            default_schema: self.default_schema(),
            or_replace: create.or_replace,
            file_schema: None,
        };
        let view = self.build_external_table(def, create).await?;
        self.install_view(&name, view, create.or_replace).await?;
        Ok(StatementResult::command("CREATE EXTERNAL TABLE"))
    }

    /// The view an external table is kept as: a scan of DataFusion's
    /// listing table over its files (schema inferred when not given).
    pub(crate) async fn build_external_table(
        &self,
        mut def: ViewDef,
        create: &CreateExternalTable,
    ) -> Result<View> {
        let state = self.df_state();
        let plan = state
            .statement_to_plan(DfStatement::CreateExternalTable(create.clone()))
            .await?;
        let LogicalPlan::Ddl(DdlStatement::CreateExternalTable(mut command)) = plan else {
            return Err(QuiverError::Internal(
                "CREATE EXTERNAL TABLE did not plan to its command".into(),
            ));
        };
        if let Some(schema) = def.stored_file_schema()? {
            command.schema = std::sync::Arc::new(datafusion::common::DFSchema::try_from(
                schema.as_ref().clone(),
            )?);
        }
        use datafusion::catalog::TableProviderFactory;
        let provider = ListingTableFactory::new()
            .create(&*state, &command)
            .await
            .map_err(|e| {
                QuiverError::InvalidParameterValue(format!(
                    "could not read the files of external table \"{}\": {e}",
                    def.name
                ))
            })?;
        if def.file_schema.is_none() {
            def.store_file_schema(&provider.schema())?;
        }
        let plan = LogicalPlanBuilder::scan(def.name.clone(), provider_as_source(provider), None)?
            .build()?;
        Ok(View {
            def,
            seq: self.db.allocate_view_seq(),
            schema: std::sync::Arc::new(plan.schema().as_arrow().clone()),
            plan,
            depends_on: Vec::new(),
            broken: None,
            updatable_columns: None,
        })
    }
}

/// Locations are absolute paths (a file, a glob or a directory) that exist
/// now; they are read again by every query.
fn check_location(location: &str) -> Result<()> {
    let path = std::path::Path::new(location);
    if path.is_dir() {
        return Ok(());
    }
    if !path.is_absolute() {
        return Err(QuiverError::InvalidParameterValue(format!(
            "external table location \"{location}\" must be an absolute path"
        )));
    }
    super::copy_files::matching_files(location).map(|_| ())
}

/// The statement again, as SQL (DataFusion's Display leaves out the
/// columns and options).
fn definition_sql(create: &CreateExternalTable) -> String {
    let mut sql = String::from("CREATE EXTERNAL TABLE ");
    sql.push_str(&create.name.to_string());
    if !create.columns.is_empty() {
        let columns: Vec<String> = create.columns.iter().map(|c| c.to_string()).collect();
        sql.push_str(&format!(" ({})", columns.join(", ")));
    }
    sql.push_str(&format!(" STORED AS {}", create.file_type));
    if !create.table_partition_cols.is_empty() {
        let columns: Vec<String> = create
            .table_partition_cols
            .iter()
            .map(|c| quote_ident(c))
            .collect();
        sql.push_str(&format!(" PARTITIONED BY ({})", columns.join(", ")));
    }
    if !create.options.is_empty() {
        let options: Vec<String> = create
            .options
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                format!(
                    "{} {}",
                    Value::SingleQuotedString(key.clone()),
                    Value::SingleQuotedString(value)
                )
            })
            .collect();
        sql.push_str(&format!(" OPTIONS ({})", options.join(", ")));
    }
    let locations: Vec<String> = create
        .locations
        .iter()
        .map(|l| Value::SingleQuotedString(l.clone()).to_string())
        .collect();
    match locations.as_slice() {
        [one] => sql.push_str(&format!(" LOCATION {one}")),
        many => sql.push_str(&format!(" LOCATION ({})", many.join(", "))),
    }
    sql
}

fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_round_trips_through_the_parser() {
        let sql = "CREATE EXTERNAL TABLE s.e (a INT, b TEXT NOT NULL) STORED AS CSV \
                   PARTITIONED BY (b) OPTIONS ('format.has_header' 'true', 'format.delimiter' ';') \
                   LOCATION '/tmp/it''s/'";
        let parsed = Session::parse(sql).unwrap().pop_front().unwrap();
        let DfStatement::CreateExternalTable(create) = parsed else {
            panic!("{parsed:?}")
        };
        let again = definition_sql(&create);
        let reparsed = Session::parse(&again).unwrap().pop_front().unwrap();
        assert_eq!(reparsed, DfStatement::CreateExternalTable(create));
    }
}
