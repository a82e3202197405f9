//! The manifest: which checkpoint files make up the database and where WAL
//! replay starts. Written whole, atomically (temp file, fsync, rename,
//! fsync of the directory).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::wal::sync_dir;
use crate::engine::commit::{TableDef, ViewDef};
use crate::engine::roles::{Acl, AclObject, Role};
use crate::engine::sequence::SequenceDef;
use crate::engine::unread::SavedStatistics;
use crate::error::{QuiverError, Result};

pub const MANIFEST_FILE: &str = "MANIFEST";
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// WAL files with this epoch or later hold the commits after this
    /// checkpoint.
    pub wal_epoch: u64,
    /// Where in the `wal_epoch` file replay starts: 0 on a primary (a
    /// checkpoint starts a new file); a replica's file is its primary's,
    /// and its checkpoint ends where replay had got to.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wal_offset: u64,
    /// The lineage of this data directory, made when it was created and
    /// kept by base backups: a replica follows only its own system.
    #[serde(default)]
    pub system_id: u64,
    /// Increases at every promotion of a replica to primary.
    #[serde(default = "first_timeline")]
    pub timeline: u64,
    pub next_table_id: u64,
    pub next_view_seq: u64,
    pub schemas: Vec<String>,
    pub tables: Vec<ManifestTable>,
    /// In creation order, so each view's dependencies exist before it.
    pub views: Vec<ViewDef>,
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Owners and grants of schemas and relations.
    #[serde(default)]
    pub acls: Vec<(AclObject, Acl)>,
    /// Each with the position it continues after.
    #[serde(default)]
    pub sequences: Vec<SequenceDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<crate::engine::foreign::ForeignKeyDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<(crate::engine::comments::CommentTarget, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestTable {
    /// `def.arrow_schema` is unused here; the schema is `arrow_schema`.
    pub def: TableDef,
    /// The Arrow schema (with the Postgres type tags) as base64 Arrow IPC.
    pub arrow_schema: String,
    /// Path of the Parquet file, relative to the data directory.
    pub file: String,
    pub version: u64,
    pub rows: u64,
    /// Size of the file.
    #[serde(default)]
    pub bytes: u64,
    /// Column statistics of the rows, for planning before they are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<SavedStatistics>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn first_timeline() -> u64 {
    1
}

/// A new lineage's id: the time it was made and some randomness, as
/// PostgreSQL's system identifier.
pub fn new_system_id() -> u64 {
    let micros = chrono::Utc::now().timestamp_micros() as u64;
    let noise = u64::from_le_bytes(crate::engine::roles::random_bytes::<8>());
    (micros << 12) ^ (noise & 0xfff)
}

impl ManifestTable {
    pub fn schema_bytes(&self) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.arrow_schema)
            .map_err(|e| QuiverError::Internal(format!("bad schema in manifest: {e}")))
    }

    pub fn encode_schema(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

impl Manifest {
    pub fn new(wal_epoch: u64) -> Manifest {
        Manifest {
            format: FORMAT,
            wal_epoch,
            wal_offset: 0,
            system_id: 0,
            timeline: 1,
            next_table_id: 1,
            next_view_seq: 1,
            schemas: Vec::new(),
            tables: Vec::new(),
            views: Vec::new(),
            roles: Vec::new(),
            acls: Vec::new(),
            sequences: Vec::new(),
            foreign_keys: Vec::new(),
            comments: Vec::new(),
        }
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(MANIFEST_FILE)
    }

    /// The manifest, or None in a data directory never checkpointed.
    pub fn read(data_dir: &Path) -> Result<Option<Manifest>> {
        let path = Manifest::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| QuiverError::Corrupt {
                path: path.display().to_string(),
                offset: 0,
                reason: format!("not a valid manifest: {e}"),
            })?;
        if manifest.format != FORMAT {
            return Err(QuiverError::Corrupt {
                path: path.display().to_string(),
                offset: 0,
                reason: format!("unknown manifest format {}", manifest.format),
            });
        }
        Ok(Some(manifest))
    }

    /// Replaces the manifest atomically.
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| QuiverError::Internal(format!("encoding the manifest: {e}")))?;
        let tmp = data_dir.join(format!("{MANIFEST_FILE}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, Manifest::path(data_dir))?;
        sync_dir(data_dir)?;
        Ok(())
    }
}
