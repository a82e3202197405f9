//! The HTTP front end: `GET /metrics` (`quiver serve --metrics-listen
//! ADDR`) answers the process's metrics and the database's state, read at
//! scrape time, in the OpenMetrics text format.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::engine::Database;
use crate::metrics::metrics;

/// Gauges read from the database at scrape time.
#[derive(Debug)]
struct DatabaseState(Arc<Database>);

impl prometheus_client::collector::Collector for DatabaseState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let db = &self.0;
        let gauge = |encoder: &mut DescriptorEncoder,
                     name: &str,
                     help: &str,
                     unit: Option<&Unit>,
                     value: i64|
         -> std::fmt::Result {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
        };
        gauge(
            &mut encoder,
            "connections_active",
            "Sessions connected now",
            None,
            db.sessions.live().len() as i64,
        )?;
        let executor = db.executor();
        gauge(
            &mut encoder,
            "queries_running",
            "Queries that read tables holding an execution slot now",
            None,
            executor.running() as i64,
        )?;
        gauge(
            &mut encoder,
            "queries_waiting",
            "Queries waiting for an execution slot now (--max-concurrent-queries)",
            None,
            executor.waiting() as i64,
        )?;
        gauge(
            &mut encoder,
            "query_slots",
            "Queries that read tables that may execute at once",
            None,
            executor.slot_count() as i64,
        )?;
        let runtime = db.runtime();
        gauge(
            &mut encoder,
            "query_memory_reserved",
            "Bytes of the query memory pool in use (--memory-limit)",
            Some(&Unit::Bytes),
            runtime.memory_pool.reserved() as i64,
        )?;
        if let datafusion::execution::memory_pool::MemoryLimit::Finite(limit) =
            runtime.memory_pool.memory_limit()
        {
            gauge(
                &mut encoder,
                "query_memory_limit",
                "Bytes the query memory pool may hold",
                Some(&Unit::Bytes),
                limit as i64,
            )?;
        }
        let limit = db.table_memory_limit();
        if limit != usize::MAX {
            gauge(
                &mut encoder,
                "table_memory_limit",
                "Bytes all tables together may hold (--max-table-memory)",
                Some(&Unit::Bytes),
                limit as i64,
            )?;
        }
        if let Some(log) = db.commit_log() {
            gauge(
                &mut encoder,
                "wal_size",
                "Bytes in the current WAL file (a checkpoint starts a new one)",
                Some(&Unit::Bytes),
                log.status().wal_bytes as i64,
            )?;
        }
        // Replication: each replica's lag on a primary, this replica's
        // on a replica.
        let senders: Vec<_> = db
            .replication
            .senders()
            .into_iter()
            .filter(|s| s.streaming)
            .collect();
        for (name, help, unit, seconds) in [
            (
                "replication_lag",
                "WAL bytes a replica has not applied yet",
                Unit::Bytes,
                false,
            ),
            (
                "replication_lag",
                "Seconds between sending WAL and a replica applying it",
                Unit::Seconds,
                true,
            ),
        ] {
            if senders.is_empty() {
                break;
            }
            let mut family = encoder.encode_descriptor(
                name,
                help,
                Some(&unit),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for sender in &senders {
                let labels = [("application_name", sender.application_name.clone())];
                let value = if seconds {
                    sender.replay_lag.map_or(0.0, |d| d.as_secs_f64())
                } else {
                    sender.lag_bytes as f64
                };
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        if let Some(receiver) = db.replication.receiver() {
            let replayed = db.replication.replayed();
            let behind = receiver.latest_end_lsn > replayed;
            let bytes = if behind && receiver.latest_end_lsn.epoch() == replayed.epoch() {
                receiver.latest_end_lsn.offset() - replayed.offset()
            } else {
                0
            };
            gauge(
                &mut encoder,
                "replica_lag",
                "WAL bytes the primary has flushed that this replica has not applied (in its current WAL file)",
                Some(&Unit::Bytes),
                bytes as i64,
            )?;
            let seconds = match (behind, db.replication.replayed_at()) {
                (true, Some(at)) => {
                    (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1e3
                }
                _ => 0.0,
            };
            let mut family = encoder.encode_descriptor(
                "replica_lag",
                "Seconds since this replica last applied a commit, while it is behind (0 when caught up)",
                Some(&Unit::Seconds),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            ConstGauge::new(seconds)
                .encode(family.encode_family(&[("status", receiver.status)])?)?;
        }
        // Per table: rows and Arrow bytes.
        let catalog = db.catalog();
        let mut tables = Vec::new();
        for (schema, entry) in &catalog.schemas {
            for (name, table) in &entry.tables {
                let version = table.pin();
                tables.push((
                    [("schema", schema.clone()), ("table", name.clone())],
                    version.row_count as i64,
                    version.memory_bytes() as i64,
                ));
            }
        }
        for (name, help, unit, pick) in [
            (
                "table_memory",
                "Bytes of Arrow data a table holds",
                Some(Unit::Bytes),
                2,
            ),
            ("table_rows", "Rows a table holds", None, 1),
        ] {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (labels, rows, bytes) in &tables {
                let value = if pick == 1 { *rows } else { *bytes };
                ConstGauge::new(value).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on `listener` for as long as the process runs.
pub async fn serve(listener: tokio::net::TcpListener, db: Arc<Database>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let db = db.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let db = db.clone();
                async move { Ok::<_, Infallible>(respond(&request, &db)) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            // A client that never finishes its request headers is cut off.
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%peer, "metrics connection ended: {e}");
            }
        });
    }
}

fn respond<B>(request: &Request<B>, db: &Arc<Database>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics().render(Box::new(DatabaseState(db.clone()))),
        ),
        (_, "/metrics") => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET /metrics\n".into(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; metrics are at /metrics\n".into(),
        ),
    }
}

/// Binds the metrics address; the caller serves it with [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Kind, Outcome};

    #[test]
    fn render_names_every_metric_with_the_prefix() {
        let db = Database::new();
        metrics().statement(Kind::Select, Outcome::Ok, Duration::from_millis(3));
        let text = metrics().render(Box::new(DatabaseState(db)));
        assert!(text.contains("quiver_statements_total{kind=\"select\",outcome=\"ok\"}"));
        assert!(text.contains("quiver_statement_duration_seconds_bucket{"));
        assert!(text.contains("quiver_connections_active 0"));
        assert!(text.ends_with("# EOF\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("quiver_"), "{line}");
        }
    }
}
