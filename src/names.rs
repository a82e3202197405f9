//! Names QuiverDB fixes, which every layer (errors included) refers to.

/// Name of the one DataFusion catalog that holds every schema.
pub const CATALOG_NAME: &str = "quiver";
/// The schema that exists in every database and is first on the search path.
pub const DEFAULT_SCHEMA: &str = "public";
