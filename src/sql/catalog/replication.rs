//! Replication in the catalog, as PostgreSQL shows it:
//! `pg_stat_replication` on a primary, `pg_stat_wal_receiver` on a
//! replica, `pg_replication_slots`, and the functions (`pg_is_in_recovery`,
//! `pg_current_wal_lsn`, `pg_last_wal_replay_lsn`, `pg_wal_lsn_diff`,
//! `pg_promote`, ...). Positions are `pg_lsn` text (`16/B374D848`).

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::functions::{arg_i64, udf};
use super::rows::{boolean, int, text, Columns, Rows};
use super::snapshot::Snapshot;
use super::CatalogContext;
use crate::engine::{Database, Lsn};
use crate::storage::storage_of;

pub const STAT_REPLICATION: Columns = &[
    ("pid", "int4"),
    ("usesysid", "oid"),
    ("usename", "name"),
    ("application_name", "text"),
    ("client_addr", "text"),
    ("client_hostname", "text"),
    ("client_port", "int4"),
    ("backend_start", "timestamptz"),
    ("backend_xmin", "xid"),
    ("state", "text"),
    ("sent_lsn", "pg_lsn"),
    ("write_lsn", "pg_lsn"),
    ("flush_lsn", "pg_lsn"),
    ("replay_lsn", "pg_lsn"),
    ("write_lag", "interval"),
    ("flush_lag", "interval"),
    ("replay_lag", "interval"),
    ("sync_priority", "int4"),
    ("sync_state", "text"),
    ("reply_time", "timestamptz"),
    // QuiverDB's: WAL bytes between this server's flush position and the
    // replica's replay position.
    ("replay_lag_bytes", "int8"),
];

pub const STAT_WAL_RECEIVER: Columns = &[
    ("pid", "int4"),
    ("status", "text"),
    ("receive_start_lsn", "pg_lsn"),
    ("receive_start_tli", "int4"),
    ("written_lsn", "pg_lsn"),
    ("flushed_lsn", "pg_lsn"),
    ("received_tli", "int4"),
    ("last_msg_send_time", "timestamptz"),
    ("last_msg_receipt_time", "timestamptz"),
    ("latest_end_lsn", "pg_lsn"),
    ("latest_end_time", "timestamptz"),
    ("slot_name", "text"),
    ("sender_host", "text"),
    ("sender_port", "int4"),
    ("conninfo", "text"),
    // QuiverDB's: why the receiver is not streaming, when it is not.
    ("last_error", "text"),
];

pub const REPLICATION_SLOTS: Columns = &[
    ("slot_name", "name"),
    ("plugin", "name"),
    ("slot_type", "text"),
    ("datoid", "oid"),
    ("database", "name"),
    ("temporary", "bool"),
    ("active", "bool"),
    ("active_pid", "int4"),
    ("restart_lsn", "pg_lsn"),
    ("confirmed_flush_lsn", "pg_lsn"),
    ("wal_status", "text"),
];

fn time(t: chrono::DateTime<chrono::Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
}

fn lsn(l: Lsn) -> ScalarValue {
    text(l.to_string())
}

/// An interval as PostgreSQL prints one under a day: `00:00:00.001234`.
fn lag(d: Option<Duration>) -> ScalarValue {
    match d {
        Some(d) => {
            let micros = d.as_micros();
            let seconds = micros / 1_000_000;
            text(format!(
                "{:02}:{:02}:{:02}.{:06}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
                micros % 1_000_000
            ))
        }
        None => ScalarValue::Null,
    }
}

/// One row per connected replica (and running base backup); the
/// details are for superusers and replication roles, as in PostgreSQL.
pub fn pg_stat_replication(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let me = snap.identity.actor();
    let privileged = snap.catalog.is_superuser(me)
        || snap
            .catalog
            .roles
            .get(&snap.identity.user)
            .is_some_and(|r| r.replication);
    let sync_state = snap.db.replication.sync_state();
    for s in snap.db.replication.senders() {
        let mut row = vec![
            ("pid", int(s.pid as i64)),
            ("usename", text(&s.user)),
            ("application_name", text(&s.application_name)),
            (
                "client_addr",
                s.client_addr
                    .map_or(ScalarValue::Null, |a| text(a.to_string())),
            ),
            ("backend_start", time(s.started)),
        ];
        if privileged {
            row.extend([
                ("state", text(s.state)),
                ("sent_lsn", lsn(s.sent)),
                ("write_lsn", lsn(s.write)),
                ("flush_lsn", lsn(s.flush)),
                ("replay_lsn", lsn(s.apply)),
                ("write_lag", lag(s.write_lag)),
                ("flush_lag", lag(s.flush_lag)),
                ("replay_lag", lag(s.replay_lag)),
                (
                    "sync_priority",
                    int(i64::from(s.streaming && sync_state != "async")),
                ),
                (
                    "sync_state",
                    text(if s.streaming { sync_state } else { "async" }),
                ),
                ("reply_time", s.reply_time.map_or(ScalarValue::Null, time)),
                ("replay_lag_bytes", int(s.lag_bytes as i64)),
            ]);
        }
        rows.push(row);
    }
    rows.finish()
}

/// The replica's receiver: one row on a replica, none on a primary.
pub fn pg_stat_wal_receiver(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    if let Some(r) = snap.db.replication.receiver() {
        let opt_time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(ScalarValue::Null, time);
        rows.push(vec![
            ("pid", int(r.pid as i64)),
            ("status", text(&r.status)),
            ("receive_start_lsn", lsn(r.receive_start_lsn)),
            ("receive_start_tli", int(r.receive_start_tli as i64)),
            ("written_lsn", lsn(r.written)),
            ("flushed_lsn", lsn(r.flushed)),
            ("received_tli", int(r.received_tli as i64)),
            ("last_msg_send_time", opt_time(r.last_msg_send_time)),
            ("last_msg_receipt_time", opt_time(r.last_msg_receipt_time)),
            ("latest_end_lsn", lsn(r.latest_end_lsn)),
            ("latest_end_time", opt_time(r.latest_end_time)),
            ("slot_name", text(&r.slot_name)),
            ("sender_host", text(&r.sender_host)),
            ("sender_port", int(i64::from(r.sender_port))),
            ("conninfo", text(&r.conninfo)),
            ("last_error", r.last_error.map_or(ScalarValue::Null, text)),
        ]);
    }
    rows.finish()
}

/// The primary's replication slots.
pub fn pg_replication_slots(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    if let Some(storage) = storage_of(&snap.db) {
        for slot in storage.slots.list() {
            rows.push(vec![
                ("slot_name", text(&slot.name)),
                ("slot_type", text("physical")),
                ("temporary", boolean(false)),
                ("active", boolean(slot.active)),
                ("restart_lsn", lsn(Lsn(slot.restart_lsn))),
                ("wal_status", text("reserved")),
            ]);
        }
    }
    rows.finish()
}

fn plan_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(crate::error::QuiverError::NotInPrerequisiteState(
        message.into(),
    )))
}

fn constant_lsn(value: Option<Lsn>, rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![value.map(|l| l.to_string()); rows]))
}

/// This server's flushed WAL position (None without a data directory).
fn flushed(db: &Database) -> Option<Lsn> {
    storage_of(db).map(|s| s.wal.flushed())
}

pub fn register(ctx: &SessionContext, context: &CatalogContext) {
    let db = context.db.clone();
    ctx.register_udf(udf(
        "pg_is_in_recovery",
        DataType::Boolean,
        move |_, rows| {
            Ok(Arc::new(BooleanArray::from(vec![
                db.replication
                    .in_recovery();
                rows
            ])))
        },
    ));
    for name in [
        "pg_current_wal_lsn",
        "pg_current_wal_flush_lsn",
        "pg_current_wal_insert_lsn",
    ] {
        let db = context.db.clone();
        ctx.register_udf(udf(name, DataType::Utf8, move |_, rows| {
            if db.replication.in_recovery() {
                return Err(plan_error(
                    "recovery is in progress: WAL control functions cannot be executed during recovery (use pg_last_wal_replay_lsn())",
                ));
            }
            let storage = storage_of(&db);
            let position = match name {
                "pg_current_wal_flush_lsn" => storage.map(|s| s.wal.flushed()),
                _ => storage.map(|s| s.wal.written()),
            };
            Ok(constant_lsn(position, rows))
        }));
    }
    let db = context.db.clone();
    ctx.register_udf(udf(
        "pg_last_wal_receive_lsn",
        DataType::Utf8,
        move |_, rows| {
            let position = db.replication.in_recovery().then(|| flushed(&db)).flatten();
            Ok(constant_lsn(position, rows))
        },
    ));
    let db = context.db.clone();
    ctx.register_udf(udf(
        "pg_last_wal_replay_lsn",
        DataType::Utf8,
        move |_, rows| {
            let position = db
                .replication
                .in_recovery()
                .then(|| db.replication.replayed());
            Ok(constant_lsn(position, rows))
        },
    ));
    let db = context.db.clone();
    ctx.register_udf(udf(
        "pg_last_xact_replay_timestamp",
        DataType::Timestamp(
            datafusion::arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        ),
        move |_, rows| {
            let at = db
                .replication
                .in_recovery()
                .then(|| db.replication.replayed_at())
                .flatten()
                .map(|t| t.timestamp_micros());
            Ok(Arc::new(
                datafusion::arrow::array::TimestampMicrosecondArray::from(vec![at; rows])
                    .with_timezone("UTC"),
            ))
        },
    ));
    ctx.register_udf(udf("pg_wal_lsn_diff", DataType::Float64, |args, rows| {
        let [a, b] = args else {
            return Err(DataFusionError::Plan(
                "pg_wal_lsn_diff(pg_lsn, pg_lsn) takes two positions".into(),
            ));
        };
        let (a, b) = (cast(a, &DataType::Utf8)?, cast(b, &DataType::Utf8)?);
        let (a, b) = (
            a.as_any().downcast_ref::<StringArray>().expect("utf8"),
            b.as_any().downcast_ref::<StringArray>().expect("utf8"),
        );
        let mut out = Vec::with_capacity(rows);
        for i in 0..a.len() {
            if a.is_null(i) || b.is_null(i) {
                out.push(None);
                continue;
            }
            let parse = |s: &str| {
                Lsn::parse(s).ok_or_else(|| {
                    DataFusionError::External(Box::new(
                        crate::error::QuiverError::InvalidTextRepresentation {
                            type_name: "pg_lsn".into(),
                            value: s.to_string(),
                        },
                    ))
                })
            };
            let (x, y) = (parse(a.value(i))?, parse(b.value(i))?);
            out.push(Some(x.0 as f64 - y.0 as f64));
        }
        Ok(Arc::new(Float64Array::from(out)))
    }));
    let c = context.clone();
    ctx.register_udf(udf("pg_promote", DataType::Boolean, move |args, rows| {
        let snap = c.snapshot();
        if !snap.catalog.is_superuser(snap.identity.actor()) {
            return Err(DataFusionError::External(Box::new(
                crate::error::QuiverError::InsufficientPrivilege(
                    "permission denied for function pg_promote: superusers only".into(),
                ),
            )));
        }
        let wait = match args.first() {
            Some(a) => cast(a, &DataType::Boolean)?
                .as_any()
                .downcast_ref::<BooleanArray>()
                .is_none_or(|b| b.is_empty() || b.is_null(0) || b.value(0)),
            None => true,
        };
        let seconds = arg_i64(args, 1, rows.max(1))?;
        let seconds = if seconds.is_empty() || seconds.is_null(0) {
            60
        } else {
            seconds.value(0).max(1) as u64
        };
        let done =
            c.db.replication
                .promote(wait.then(|| Duration::from_secs(seconds)))
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(BooleanArray::from(vec![done; rows])))
    }));
    let c = context.clone();
    ctx.register_udf(udf(
        "pg_drop_replication_slot",
        DataType::Utf8,
        move |args, rows| {
            let snap = c.snapshot();
            if !snap.catalog.is_superuser(snap.identity.actor()) {
                return Err(DataFusionError::External(Box::new(
                    crate::error::QuiverError::InsufficientPrivilege(
                        "permission denied to drop a replication slot: superusers only".into(),
                    ),
                )));
            }
            let names = match args.first() {
                Some(a) => cast(a, &DataType::Utf8)?,
                None => {
                    return Err(DataFusionError::Plan(
                        "pg_drop_replication_slot needs a slot name".into(),
                    ))
                }
            };
            let names = names.as_any().downcast_ref::<StringArray>().expect("utf8");
            let storage = storage_of(&c.db)
                .ok_or_else(|| plan_error("this server has no replication slots"))?;
            for i in 0..names.len() {
                if names.is_null(i) {
                    continue;
                }
                let name = names.value(i);
                if storage
                    .slots
                    .list()
                    .iter()
                    .any(|s| s.name == name && s.active)
                {
                    return Err(DataFusionError::External(Box::new(
                        crate::error::QuiverError::ObjectInUse(format!(
                            "replication slot \"{name}\" is active"
                        )),
                    )));
                }
                match storage.slots.drop_slot(name) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(DataFusionError::External(Box::new(
                            crate::error::QuiverError::UndefinedObject(format!(
                                "replication slot \"{name}\" does not exist"
                            )),
                        )))
                    }
                    Err(e) => return Err(DataFusionError::External(Box::new(e))),
                }
            }
            Ok(Arc::new(StringArray::from(vec![None::<&str>; rows])))
        },
    ));
}
