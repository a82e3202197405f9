//! The DataFusion context a session plans with: PostgreSQL's parser
//! settings and type rules, the system catalogs over the engine's catalog,
//! and PostgreSQL's functions. Every front end's sessions plan in one.

use std::sync::Arc;

use datafusion::execution::context::{SessionConfig, SessionContext};

use super::catalog::{CatalogContext, SessionInfo};
use super::pg_types_in;
use std::time::Instant;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use parking_lot::Mutex;

use super::sequences::SequenceCalls;
use super::{pg_arithmetic, pg_casts, pg_datestyle, pg_extract, pg_timezone, pg_to_char};
use crate::engine::{Database, TxnSlot, CATALOG_NAME, DEFAULT_SCHEMA};

/// A planning context and the handles the session keeps to it.
pub struct Planner {
    pub ctx: SessionContext,
    /// The casts from text that plans are rewritten to call.
    pub text_casts: pg_casts::TextCasts,
    /// The session's TimeZone as Arrow names it, read by the planner.
    pub zone: pg_timezone::ZoneHandle,
    /// The session's DateStyle, read by the planner.
    pub date_style: pg_datestyle::Handle,
    /// What the session's functions reach of it (sequences, advisory
    /// locks, notifications, set_config).
    pub handle: SessionHandle,
}

/// The calling session as the functions that need it find it: a
/// configuration extension of its DataFusion context, so that a function
/// planned by one session (a column's DEFAULT) acts for whichever session
/// runs it.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub context: CatalogContext,
    /// currval/lastval, and the log record values handed out must wait
    /// for.
    pub sequences: Arc<SequenceCalls>,
    /// When the running statement times out (statement_timeout).
    pub deadline: Arc<Mutex<Option<Instant>>>,
    /// `pg_notify` calls of the running statement: (channel, payload).
    pub notifies: Arc<Mutex<Vec<(String, String)>>>,
    /// `set_config` calls of the running statement: (name, value,
    /// is_local).
    pub settings: Arc<Mutex<Vec<(String, String, bool)>>>,
}

impl SessionHandle {
    fn new(context: CatalogContext) -> SessionHandle {
        SessionHandle {
            context,
            sequences: Default::default(),
            deadline: Default::default(),
            notifies: Default::default(),
            settings: Default::default(),
        }
    }

    /// Whether the statement running now gets cancelled or runs out of
    /// time, asked later (a wait checks it while the session may have
    /// moved on: its next statement has a token and deadline of its own).
    pub fn stop_check(&self) -> impl Fn() -> bool {
        let token = self.context.info.statement_token();
        let deadline = *self.deadline.lock();
        move || token.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d)
    }
}

impl ConfigExtension for SessionHandle {
    const PREFIX: &'static str = "quiver_session";
}

impl ExtensionOptions for SessionHandle {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, _: &str) -> DfResult<()> {
        Err(DataFusionError::Configuration(format!(
            "unrecognized configuration parameter \"{key}\""
        )))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        Vec::new()
    }
}

impl Planner {
    /// A context over `db`'s catalog as the transaction in `slot` sees it;
    /// `info` is the session the system catalogs report as the current one.
    pub fn new(db: &Arc<Database>, slot: Arc<TxnSlot>, info: Arc<SessionInfo>) -> Planner {
        let context = CatalogContext {
            db: db.clone(),
            slot: slot.clone(),
            info,
        };
        let handle = SessionHandle::new(context.clone());
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `1.5` is a numeric, as in PostgreSQL (DataFusion: a float).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            // A sorted subquery feeds its rows in order, as PostgreSQL
            // documents for `string_agg(x) FROM (SELECT ... ORDER BY y)`
            // (DataFusion drops such an ORDER BY).
            .set_bool(
                "datafusion.sql_parser.enable_subquery_sort_elimination",
                false,
            )
            // DataFusion 55 builds the dynamic filter of `min(a), max(b)`
            // from the aggregates whose argument is a plain column and
            // ignores the others, so `SELECT max(x), min(-y)` lost rows
            // that only the second aggregate needed (a wrong answer).
            .set_bool(
                "datafusion.optimizer.enable_aggregate_dynamic_filter_pushdown",
                false,
            )
            // now() and `::timestamptz` give instants (timestamptz), shown
            // in the session's TimeZone, which is UTC.
            .set_str("datafusion.execution.time_zone", "UTC")
            // Hash joins whose build side holds up to 1M rows (64 MiB)
            // build one table that every partition probes, instead of
            // repartitioning both sides by key: on this 2-core machine the
            // repartition of the probe side (6M lineitems) cost more than
            // the single-threaded build. TPC-H SF 1 total 1452 -> 1174 ms,
            // Q17 104 -> 44 ms, Q21 157 -> 116 ms (BENCHMARKS.md, issue 19).
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold_rows",
                1 << 20,
            )
            .set_usize(
                "datafusion.optimizer.hash_join_single_partition_threshold",
                64 << 20,
            )
            // A perfect-hash (array) join for build keys that fill at
            // least a tenth of their range, not DataFusion's 0.15: Q21's
            // 730K orders of status 'F' over keys 1..6M fill 0.12 (Q21 116
            // -> 80-87 ms, Q9 92 -> 79-93 ms in runs at 0.05 and 0.1). The
            // array is then at most ten times the build side's row count.
            .set_str(
                "datafusion.execution.perfect_hash_join_min_key_density",
                "0.1",
            )
            .with_extension(slot.clone())
            .with_option_extension(handle.clone());
        let zone: pg_timezone::ZoneHandle = Arc::new(std::sync::RwLock::new(pg_timezone::utc()));
        let date_style = pg_datestyle::Handle::default();
        let ctx = SessionContext::new_with_state(pg_arithmetic::session_state(
            config,
            db.runtime(),
            zone.clone(),
            date_style.clone(),
        ));
        super::catalog::install(&ctx, CATALOG_NAME, context);
        for udf in super::sequences::udfs()
            .into_iter()
            .chain(super::advisory::udfs())
            .chain([super::sleep::udf()])
            .chain(super::session_functions::udfs())
        {
            ctx.register_udf(udf);
        }
        let text_casts = pg_casts::TextCasts::default();
        text_casts.register(&ctx);
        ctx.register_udf(pg_timezone::at_time_zone_udf());
        ctx.register_udf(pg_casts::named_cast_udf());
        ctx.register_udf(pg_to_char::to_char_udf("UTC", None));
        ctx.register_udf(super::pg_to_number::to_number_udf());
        ctx.register_udf(super::pg_to_number::mod_udf());
        ctx.register_udf(pg_extract::date_part_udf("UTC"));
        ctx.register_udf(super::pg_age::age_udf("UTC"));
        ctx.register_udf(super::pg_width_bucket::width_bucket_udf());
        ctx.register_udf(pg_casts::pg_typeof_udf());
        ctx.register_udf(super::pg_round::round_udf());
        for udf in super::pg_round::integral_udfs() {
            ctx.register_udf(udf);
        }
        for udf in super::pg_math::udfs() {
            ctx.register_udf(udf);
        }
        ctx.register_udf(super::pg_math::bitwise_not_udf());
        ctx.register_udf(super::pg_math::div_udf());
        ctx.register_udf(super::pg_make_interval::udf());
        for udf in super::pg_text::udfs() {
            ctx.register_udf(udf);
        }
        for udf in super::pg_calendar::udfs() {
            ctx.register_udf(udf);
        }
        // PostgreSQL's names for functions DataFusion has under others.
        ctx.register_udf(
            datafusion::functions::math::signum()
                .as_ref()
                .clone()
                .with_aliases(["sign"]),
        );
        ctx.register_udaf(
            datafusion::functions_aggregate::variance::var_samp_udaf()
                .as_ref()
                .clone()
                .with_aliases(["variance"]),
        );
        ctx.register_udaf(
            datafusion::functions_aggregate::bool_and_or::bool_and_udaf()
                .as_ref()
                .clone()
                .with_aliases(["every"]),
        );
        super::pg_json::register_table_functions(&ctx);
        for udf in super::pg_ordered_set::udfs() {
            ctx.register_udf(udf);
        }
        for udf in super::pg_json::udfs() {
            ctx.register_udf(udf);
        }
        for udf in super::pg_arrays::udfs() {
            ctx.register_udf(udf);
        }
        for udf in pg_types_in::text_type_udfs() {
            ctx.register_udf(udf);
        }
        ctx.register_udf(pg_types_in::gen_random_uuid_udf());
        Planner {
            ctx,
            text_casts,
            zone,
            date_style,
            handle,
        }
    }
}
