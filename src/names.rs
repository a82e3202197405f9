//! Names QuiverDB fixes, which every layer (errors included) refers to.

/// The database a server serves unless told otherwise (`--database`).
pub const DEFAULT_DATABASE: &str = "quiver";
/// The name every server also answers to: tools open PostgreSQL's
/// maintenance database first.
pub const DATABASE_ALIAS: &str = "postgres";
/// Name of the one DataFusion catalog that holds every schema.
pub const CATALOG_NAME: &str = "quiver";
/// The schema that exists in every database and is first on the search path.
pub const DEFAULT_SCHEMA: &str = "public";
