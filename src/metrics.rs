//! Prometheus metrics: counters and histograms every layer updates as it
//! works. The `http` front end serves them, with gauges read from the
//! database when scraped, at `GET /metrics` in the OpenMetrics text
//! format; every name starts with `quiver_`.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

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
struct FlightLabels {
    call: &'static str,
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
    flight_requests: Family<FlightLabels, Counter>,
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
        let flight_requests = Family::<FlightLabels, Counter>::default();
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
            "flight_requests",
            "Arrow Flight SQL calls, by call (GetFlightInfo, DoGet, DoPut, DoAction, Handshake) and outcome",
            flight_requests.clone(),
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
            flight_requests,
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

    /// An Arrow Flight SQL call ended (`ok` or `error`).
    pub fn flight_request(&self, call: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.flight_requests
            .get_or_create(&FlightLabels { call, outcome })
            .inc();
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

    /// The text a scrape returns: these metrics and the gauges `state`
    /// reads at scrape time (the database's, from the front end that
    /// serves them).
    pub fn render(&self, state: Box<dyn prometheus_client::collector::Collector>) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut registry = Registry::with_prefix("quiver");
        registry.register_collector(state);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &registry);
        let _ = encode_eof(&mut out);
        out
    }
}
