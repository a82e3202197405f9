//! The two system schemas as DataFusion providers: each table is built
//! from a fresh [`Snapshot`] when a query scans it.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::catalog::{MemoryCatalogProviderList, Session as DfSession};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_pg_catalog::pg_catalog::{
    PgCatalogSchemaProvider, PgCatalogStaticTables, PG_CATALOG_TABLES,
};

use super::rows::{schema_of, Columns};
use super::snapshot::Snapshot;
use super::{info_schema, pg_tables, CatalogContext};

type Build = fn(&Snapshot, SchemaRef) -> Result<RecordBatch>;

/// A generated table: its columns and how to build its rows.
pub struct Generated {
    pub name: &'static str,
    pub columns: Columns,
    pub build: Build,
}

/// The built-in rows of a real Postgres catalog (pg_type, pg_proc, pg_am,
/// ...), loaded once per process. `None` if the export fails to load,
/// which would be a packaging bug; those tables are then absent.
type StaticCatalog = PgCatalogSchemaProvider<Arc<dyn CatalogProviderList>, EmptyContextProvider>;

static STATIC_TABLES: LazyLock<Option<StaticCatalog>> = LazyLock::new(|| {
    let tables = match PgCatalogStaticTables::try_new() {
        Ok(t) => Arc::new(t),
        Err(e) => {
            tracing::error!("built-in pg_catalog tables failed to load: {e}");
            return None;
        }
    };
    let empty: Arc<dyn CatalogProviderList> = Arc::new(MemoryCatalogProviderList::new());
    PgCatalogSchemaProvider::try_new(empty, tables, EmptyContextProvider).ok()
});

#[derive(Debug)]
pub struct SystemSchema {
    context: CatalogContext,
    generated: &'static [Generated],
    /// Tables not generated here come from the built-in export.
    with_static: bool,
}

impl SystemSchema {
    pub fn pg_catalog(context: CatalogContext) -> Self {
        SystemSchema {
            context,
            generated: pg_tables::TABLES,
            with_static: true,
        }
    }

    pub fn information_schema(context: CatalogContext) -> Self {
        SystemSchema {
            context,
            generated: info_schema::TABLES,
            with_static: false,
        }
    }

    fn generated(&self, name: &str) -> Option<&'static Generated> {
        self.generated
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.generated.iter().map(|g| g.name.to_string()).collect();
        if self.with_static {
            for name in PG_CATALOG_TABLES {
                if self.generated(name).is_none() {
                    names.push(name.to_string());
                }
            }
        }
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(generated) = self.generated(name) {
            return Ok(Some(Arc::new(SystemTable {
                schema: schema_of(generated.columns),
                build: generated.build,
                context: self.context.clone(),
            })));
        }
        if self.with_static {
            if let Some(tables) = STATIC_TABLES.as_ref() {
                return tables.table(name).await;
            }
        }
        Ok(None)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.generated(name).is_some()
            || (self.with_static
                && PG_CATALOG_TABLES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(name)))
    }
}

/// A user schema in which `quiver_tables` also resolves (unless a
/// relation of that name exists there), so the view needs no qualifier.
#[derive(Debug)]
pub struct WithQuiverTables {
    inner: Arc<dyn SchemaProvider>,
    context: CatalogContext,
}

impl WithQuiverTables {
    pub fn new(inner: Arc<dyn SchemaProvider>, context: CatalogContext) -> Self {
        WithQuiverTables { inner, context }
    }
}

#[async_trait]
impl SchemaProvider for WithQuiverTables {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(found) = self.inner.table(name).await? {
            return Ok(Some(found));
        }
        if name == pg_tables::QUIVER_TABLES {
            return SystemSchema::pg_catalog(self.context.clone())
                .table(name)
                .await;
        }
        Ok(None)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name) || name == pg_tables::QUIVER_TABLES
    }
}

struct SystemTable {
    schema: SchemaRef,
    build: Build,
    context: CatalogContext,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemTable").finish()
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = (self.build)(&self.context.snapshot(), self.schema.clone())?;
        let source =
            MemorySourceConfig::try_new(&[vec![batch]], self.schema.clone(), projection.cloned())?;
        Ok(DataSourceExec::from_data_source(source))
    }
}
