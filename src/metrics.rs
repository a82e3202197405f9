//! Prometheus metrics: counters and histograms the server updates as it
//! works, and gauges read from the database when scraped. `quiver serve
//! --metrics-listen ADDR` serves them at `GET /metrics` in the OpenMetrics
//! text format; every name starts with `quiver_`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::engine::Database;
use crate::error::QuiverError;

/// What a statement is, for `quiver_statements_total{kind=...}`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    Copy,
    Ddl,
    Transaction,
    Utility,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Select => "select",
            Kind::Insert => "insert",
            Kind::Update => "update",
            Kind::Delete => "delete",
            Kind::Copy => "copy",
            Kind::Ddl => "ddl",
            Kind::Transaction => "transaction",
            Kind::Utility => "utility",
        }
    }
}

/// How a statement ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Ok,
    Error,
    Canceled,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, QuiverError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(QuiverError::QueryCanceled | QuiverError::StatementTimeout) => Outcome::Canceled,
            Err(_) => Outcome::Error,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Canceled => "canceled",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatementLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The metrics the server updates as it works. One set per process.
pub struct Metrics {
    registry: Registry,
    statements: Family<StatementLabels, Counter>,
    statement_seconds: Family<KindLabel, Histogram>,
    connections: Counter,
    failed_logins: Counter,
    wal_bytes: Counter,
    wal_fsync_seconds: Histogram,
    checkpoint_seconds: Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn seconds_histogram() -> Histogram {
    // 50 µs .. ~100 s.
    Histogram::new(exponential_buckets(0.00005, 4.0, 11))
}

impl Metrics {
    fn new() -> Metrics {
        let statements = Family::<StatementLabels, Counter>::default();
        let statement_seconds =
            Family::<KindLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        let connections = Counter::default();
        let failed_logins = Counter::default();
        let wal_bytes = Counter::default();
        let wal_fsync_seconds = seconds_histogram();
        let checkpoint_seconds = seconds_histogram();
        let mut registry = Registry::with_prefix("quiver");
        registry.register(
            "statements",
            "Statements run, by kind and outcome (ok, error, canceled)",
            statements.clone(),
        );
        registry.register_with_unit(
            "statement_duration",
            "How long statements took, by kind",
            Unit::Seconds,
            statement_seconds.clone(),
        );
        registry.register(
            "connections",
            "TCP connections accepted (before login)",
            connections.clone(),
        );
        registry.register(
            "failed_logins",
            "Password authentications that failed (wrong password or unknown role)",
            failed_logins.clone(),
        );
        registry.register_with_unit(
            "wal_written",
            "Bytes written to the write-ahead log",
            Unit::Bytes,
            wal_bytes.clone(),
        );
        registry.register_with_unit(
            "wal_fsync_duration",
            "How long each WAL fsync took",
            Unit::Seconds,
            wal_fsync_seconds.clone(),
        );
        registry.register_with_unit(
            "checkpoint_duration",
            "How long each checkpoint took",
            Unit::Seconds,
            checkpoint_seconds.clone(),
        );
        Metrics {
            registry,
            statements,
            statement_seconds,
            connections,
            failed_logins,
            wal_bytes,
            wal_fsync_seconds,
            checkpoint_seconds,
        }
    }

    /// A statement finished.
    pub fn statement(&self, kind: Kind, outcome: Outcome, elapsed: Duration) {
        let kind = kind.as_str();
        self.statements
            .get_or_create(&StatementLabels {
                kind,
                outcome: outcome.as_str(),
            })
            .inc();
        self.statement_seconds
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    pub fn connection_accepted(&self) {
        self.connections.inc();
    }

    pub fn login_failed(&self) {
        self.failed_logins.inc();
    }

    pub fn wal_written(&self, bytes: usize) {
        self.wal_bytes.inc_by(bytes as u64);
    }

    pub fn wal_fsync(&self, elapsed: Duration) {
        self.wal_fsync_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn checkpoint(&self, elapsed: Duration) {
        self.checkpoint_seconds.observe(elapsed.as_secs_f64());
    }

    /// The text a scrape returns: these metrics and the state of `db`.
    pub fn render(&self, db: &Arc<Database>) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut state = Registry::with_prefix("quiver");
        state.register_collector(Box::new(DatabaseState(db.clone())));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &state);
        let _ = encode_eof(&mut out);
        out
    }
}

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
        // Per table: rows and Arrow bytes.
        let catalog = db.catalog();
        let mut tables = Vec::new();
        for (schema, entry) in &catalog.schemas {
            for (name, table) in &entry.tables {
                let version = table.snapshot();
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
            metrics().render(db),
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

    #[test]
    fn render_names_every_metric_with_the_prefix() {
        let db = Database::new();
        metrics().statement(Kind::Select, Outcome::Ok, Duration::from_millis(3));
        let text = metrics().render(&db);
        assert!(text.contains("quiver_statements_total{kind=\"select\",outcome=\"ok\"}"));
        assert!(text.contains("quiver_statement_duration_seconds_bucket{"));
        assert!(text.contains("quiver_connections_active 0"));
        assert!(text.ends_with("# EOF\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("quiver_"), "{line}");
        }
    }
}
