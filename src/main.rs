//! The `quiver` command: `quiver serve` runs the Postgres-protocol server,
//! `quiver` or `quiver repl` opens the interactive shell.
//!
//! Over 800 lines: the command line (clap) of every subcommand and the
//! code that wires each to the library.

/// mimalloc instead of the system allocator: DataFusion allocates and
/// frees many short-lived buffers per batch, and glibc's malloc spent a
/// tenth of a point lookup's time in malloc/free (perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use quiverdb::Database;

#[derive(Parser)]
#[command(
    name = "quiver",
    version,
    about = "QuiverDB: an in-memory analytical SQL database"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    storage: StorageArgs,
    /// Log lines for people (human) or one JSON object per line (json).
    /// QUIVER_LOG sets the level (e.g. debug, or quiverdb=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "QUIVER_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve clients over the PostgreSQL wire protocol.
    Serve {
        /// A TOML file of settings, named as the flags are
        /// (`memory_limit = "2GB"`, `max_connections = 50`, ...). Flags and
        /// QUIVER_* environment variables override it.
        #[arg(long, env = "QUIVER_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5432", env = "QUIVER_LISTEN")]
        listen: SocketAddr,
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        security: ServerArgs,
    },
    /// Copy a running primary's database into an empty data directory, to
    /// start a replica on (`quiver serve --replicate-from` does this by
    /// itself when its data directory is empty).
    Basebackup {
        /// The primary, e.g. postgres://replicator@10.0.0.1:5432/quiver.
        #[arg(long)]
        from: String,
        /// The new data directory (missing or empty).
        #[arg(long, env = "QUIVER_DATA_DIR")]
        data_dir: PathBuf,
        /// The replica's name (its slot on the primary keeps the WAL after
        /// the backup until the replica streams).
        #[arg(long)]
        replica_name: Option<String>,
    },
    /// Make a stopped replica a primary (on a running replica: SELECT
    /// pg_promote()).
    Promote {
        #[arg(long, env = "QUIVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Manage the roles of a data directory (the server must not be
    /// running on it).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Open the interactive SQL shell on an embedded database (the default),
    /// or on a running server given its URL.
    Repl {
        /// A server to connect to instead, e.g.
        /// postgres://user@127.0.0.1:5432/quiver (password from the URL,
        /// PGPASSWORD, or asked for).
        url: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Load CSV, Parquet or JSON-lines files into a table, in one
    /// transaction (a failed import leaves the table as it was). A missing
    /// table is created from the first file's columns.
    Import {
        /// The files (the format comes from their extension, or --format).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The table to load (schema.table or table).
        #[arg(long)]
        table: String,
        #[command(flatten)]
        target: TransferTarget,
        #[arg(long, value_enum)]
        format: Option<quiverdb::transfer::Format>,
        /// CSV files have no header line (columns are then filled in order).
        #[arg(long)]
        no_header: bool,
        /// CSV field delimiter.
        #[arg(long, default_value_t = ',')]
        delimiter: char,
    },
    /// Write a table or a query's rows to a CSV, Parquet or JSON-lines
    /// file (written whole or not at all).
    Export {
        /// The file to write (the format comes from its extension, or
        /// --format).
        file: PathBuf,
        /// The table to export.
        #[arg(long, conflicts_with = "query", required_unless_present = "query")]
        table: Option<String>,
        /// A query whose rows to export.
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        target: TransferTarget,
        #[arg(long, value_enum)]
        format: Option<quiverdb::transfer::Format>,
    },
    /// Open a damaged data directory (the server must not be running on
    /// it) as far as it can be read, without changing it. Says what cannot
    /// be brought back; --serve serves the rest read-only, --salvage-to
    /// copies it into a new data directory.
    Recover {
        /// The damaged data directory.
        #[arg(long, env = "QUIVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Write what can be read into this new data directory (it must be
        /// missing or empty); `quiver serve --data-dir` it afterwards.
        #[arg(long, conflicts_with = "serve")]
        salvage_to: Option<PathBuf>,
        /// Serve what can be read, read-only (every change fails with
        /// 25006), until stopped.
        #[arg(long)]
        serve: bool,
        /// Address to listen on with --serve.
        #[arg(long, default_value = "127.0.0.1:5432", requires = "serve")]
        listen: SocketAddr,
        #[command(flatten)]
        security: ServerArgs,
    },
    /// Write a checkpoint of a data directory (the server must not be
    /// running on it) and exit.
    Checkpoint {
        /// Data directory.
        #[arg(long, env = "QUIVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a role that can log in. The password is read from the
    /// terminal, or from QUIVER_PASSWORD when set (never from the command
    /// line).
    Add {
        /// The role's name.
        name: String,
        /// Make the role a superuser.
        #[arg(long)]
        superuser: bool,
        /// Data directory.
        #[arg(long, env = "QUIVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
}

/// Who may connect, over what, and the limits that keep the server up.
#[derive(Args, Clone)]
struct ServerArgs {
    /// TLS certificate chain (PEM). With --tls-key, clients may use TLS.
    #[arg(long, env = "QUIVER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "QUIVER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse logins that do not use TLS.
    #[arg(long, env = "QUIVER_REQUIRE_TLS", requires = "tls_cert")]
    require_tls: bool,
    /// Accept every login without a password, from any address. Only for
    /// trusted networks.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Memory for query execution (operators that can spill do so past it;
    /// a query that still does not fit fails with 53200); default a quarter of
    /// the machine's memory. Sizes take KB/MB/GB or KiB/MiB/GiB.
    #[arg(long, env = "QUIVER_MEMORY_LIMIT", value_parser = quiverdb::config::parse_size)]
    memory_limit: Option<usize>,
    /// Memory all tables' rows together may take; default half of the
    /// machine's memory.
    #[arg(long, env = "QUIVER_MAX_TABLE_MEMORY", value_parser = quiverdb::config::parse_size)]
    max_table_memory: Option<usize>,
    /// The name of the database clients connect to (`postgres` is accepted
    /// as an alias of it); any other name is refused with 3D000.
    #[arg(long, default_value = quiverdb::names::DEFAULT_DATABASE, env = "QUIVER_DATABASE")]
    database: String,
    /// Connections at once (3 of them are kept for superusers).
    #[arg(long, default_value_t = 100, env = "QUIVER_MAX_CONNECTIONS")]
    max_connections: usize,
    /// Queries that read tables executing at once; the rest wait in
    /// order (pg_stat_activity shows wait_event QueryQueue). Default: the
    /// number of cores.
    #[arg(long, env = "QUIVER_MAX_CONCURRENT_QUERIES")]
    max_concurrent_queries: Option<usize>,
    /// Threads that execute queries (apart from the ones that accept
    /// connections and answer cancel requests). Default: the number of
    /// cores.
    #[arg(long, env = "QUIVER_QUERY_THREADS")]
    query_threads: Option<usize>,
    /// Log every statement that runs at least this many milliseconds
    /// (with its duration and text), as PostgreSQL's
    /// log_min_duration_statement; off when not given.
    #[arg(long, env = "QUIVER_LOG_MIN_DURATION_STATEMENT")]
    log_min_duration_statement: Option<u64>,
    /// The largest message a client may send.
    #[arg(long, default_value = "64MiB", env = "QUIVER_MAX_MESSAGE_SIZE", value_parser = quiverdb::config::parse_size)]
    max_message_size: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (off when not given),
    /// e.g. 127.0.0.1:9187.
    #[arg(long, env = "QUIVER_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Serve Arrow Flight SQL (gRPC) on ADDR beside the PostgreSQL
    /// protocol (off when not given), e.g. 127.0.0.1:32010. Same logins,
    /// TLS (--tls-cert/--tls-key) and connection limit.
    #[arg(long, env = "QUIVER_FLIGHT_LISTEN")]
    flight_listen: Option<SocketAddr>,
    /// A Flight SQL session (its bearer token) ends after this many
    /// seconds without a call; its open transaction rolls back.
    #[arg(long, default_value_t = 1800, env = "QUIVER_FLIGHT_IDLE_TIMEOUT")]
    flight_idle_timeout: u64,
    /// Default statement_timeout of every session (e.g. 30s, 5min, 1500 for
    /// milliseconds; 0: none). Sessions may SET their own.
    #[arg(long, env = "QUIVER_STATEMENT_TIMEOUT")]
    statement_timeout: Option<String>,
    /// Default synchronous_commit of every session: on (a commit is
    /// acknowledged once its WAL record is on disk, and on the synchronous
    /// replicas' disks), remote_apply (also applied there), remote_write
    /// (written there), local (the local disk only) or off (up to 200 ms
    /// of acknowledged commits may be lost in a crash, never corrupted).
    #[arg(long, env = "QUIVER_SYNCHRONOUS_COMMIT", value_parser = ["on", "off", "local", "remote_write", "remote_apply"])]
    synchronous_commit: Option<String>,
    /// Be a read-only replica of this primary, e.g.
    /// postgres://replicator:secret@10.0.0.1:5432/quiver (password also
    /// from PGPASSWORD). An empty data directory starts with a base backup.
    #[arg(long, env = "QUIVER_REPLICATE_FROM")]
    replicate_from: Option<String>,
    /// This replica's name: its replication slot on the primary and its
    /// application_name in pg_stat_replication (default: one made from the
    /// data directory's path).
    #[arg(long, env = "QUIVER_REPLICA_NAME")]
    replica_name: Option<String>,
    /// When the primary no longer has the WAL this replica needs (it fell
    /// past --max-replica-lag) or the directory was another server's,
    /// replace its data with a new base backup instead of refusing.
    #[arg(long, env = "QUIVER_REBASE_IF_NEEDED", requires = "replicate_from")]
    rebase_if_needed: bool,
    /// A commit waits until this many replicas have it (as
    /// synchronous_commit says: on disk, written, or applied); 0: replicas
    /// are asynchronous.
    #[arg(long, default_value_t = 0, env = "QUIVER_SYNCHRONOUS_REPLICAS")]
    synchronous_replicas: usize,
    /// WAL a replica may fall behind by before the primary drops its slot
    /// (and the replica must take a new base backup).
    #[arg(long, default_value = "1GiB", env = "QUIVER_MAX_REPLICA_LAG", value_parser = quiverdb::config::parse_size)]
    max_replica_lag: usize,
    /// Seconds a checkpoint file stays after a newer checkpoint replaced
    /// it, for readers outside the server (base backups, other tools).
    #[arg(long, default_value_t = 60, env = "QUIVER_CHECKPOINT_FILE_GRACE")]
    checkpoint_file_grace: u64,
}

/// Where import and export work: a data directory (the server stopped)
/// or a running server.
#[derive(Args, Clone)]
struct TransferTarget {
    /// Data directory (default ./quiver-data, as the server's).
    #[arg(long, env = "QUIVER_DATA_DIR", conflicts_with = "url")]
    data_dir: Option<PathBuf>,
    /// A running server instead, e.g. postgres://user@127.0.0.1:5432/quiver.
    #[arg(long)]
    url: Option<String>,
}

/// How the shell prints results.
#[derive(Args, Clone, Default)]
struct OutputArgs {
    /// Result format: aligned (psql's), csv or json.
    #[arg(long, value_parser = ["aligned", "csv", "json"])]
    format: Option<String>,
    /// Expanded display (psql's \x): one line per column.
    #[arg(long, short = 'x')]
    expanded: bool,
}

impl OutputArgs {
    fn options(&self) -> quiverdb::repl::Options {
        quiverdb::repl::Options {
            mode: self
                .format
                .as_deref()
                .and_then(quiverdb::repl::Mode::parse)
                .unwrap_or(quiverdb::repl::Mode::Aligned),
            expanded: self.expanded,
        }
    }
}

#[derive(Args, Clone, Default)]
struct StorageArgs {
    /// Data directory (the server's default is ./quiver-data; the REPL's
    /// default is in-memory).
    #[arg(long, env = "QUIVER_DATA_DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Run purely in memory, with no data directory.
    #[arg(long)]
    memory: bool,
    /// Checkpoint automatically when the WAL grows past this many MiB.
    #[arg(long, default_value_t = 64, env = "QUIVER_CHECKPOINT_WAL_MB")]
    checkpoint_wal_mb: u64,
    /// Checkpoint every this many seconds when anything was committed
    /// since the last one (0: only by WAL size, CHECKPOINT and shutdown).
    #[arg(long, default_value_t = 300, env = "QUIVER_CHECKPOINT_INTERVAL")]
    checkpoint_interval: u64,
}

const DEFAULT_DATA_DIR: &str = "quiver-data";

/// The data directory, locked against a second server using it.
struct DataDir {
    _lock: std::fs::File,
}

/// The database: in memory, or opened (recovered) from its data directory.
async fn open_database(
    data_dir: Option<PathBuf>,
    args: &StorageArgs,
) -> anyhow::Result<(Arc<Database>, Option<DataDir>)> {
    let Some(dir) = data_dir else {
        return Ok((Database::new(), None));
    };
    let lock = lock_data_dir(&dir)?;
    if dir
        .join(quiverdb::replication::replica::STANDBY_FILE)
        .exists()
    {
        anyhow::bail!(
            "{} is a replica's data directory: start it with --replicate-from URL, or make it \
             a primary first (quiver promote --data-dir {})",
            dir.display(),
            dir.display()
        );
    }
    let db = quiverdb::open(&dir)
        .await
        .with_context(|| format!("could not open data directory {}", dir.display()))?;
    configure_storage(&db, args);
    Ok((db, Some(lock)))
}

/// Checkpoint thresholds and the checkpoint timer.
fn configure_storage(db: &Arc<Database>, args: &StorageArgs) {
    if let Some(storage) = quiverdb::storage::storage_of(db) {
        storage.set_checkpoint_wal_bytes(args.checkpoint_wal_mb.max(1) * 1024 * 1024);
        if args.checkpoint_interval > 0 {
            quiverdb::storage::checkpoint_every(
                db,
                std::time::Duration::from_secs(args.checkpoint_interval),
            );
        }
    }
}

/// A checkpoint on the way out, so the next start has little WAL to replay.
async fn checkpoint_on_exit(db: &Arc<Database>) {
    if db.commit_log().is_none() {
        return;
    }
    let db = db.clone();
    match tokio::task::spawn_blocking(move || db.checkpoint()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!("checkpoint at shutdown failed: {e}"),
        Err(e) => tracing::error!("checkpoint at shutdown failed: {e}"),
    }
}

fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDir> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create data directory {}", dir.display()))?;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("could not open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "data directory {} is in use by another quiver process",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("could not lock {}", path.display()))
        }
    }
    Ok(DataDir { _lock: file })
}

/// Turns transparent huge pages off for this process, as Redis, MongoDB and
/// most databases advise, unless `MIMALLOC_ALLOW_THP` asks for them.
/// mimalloc asks for huge pages on its segments, so each first touch of a
/// segment zeroed 2 MiB and every purge of a freed span split a huge page
/// that a later allocation zeroed again whole: a Flight ingest of TPC-H
/// lineitem spent 29% of its CPU in the kernel's `clear_page`. Without them
/// the ingest takes a fifth less CPU, a COPY of lineitem a third less time,
/// and the loaded tables 4 to 13% less resident memory (BENCHMARKS.md);
/// TPC-H is unchanged.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and
        // changes nothing but this process's page policy.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("quiver: {e:#}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    let result = match cli.command {
        Some(Command::Serve {
            listen,
            storage,
            security,
            ..
        }) => serve(listen, storage, security),
        Some(Command::User {
            command:
                UserCommand::Add {
                    name,
                    superuser,
                    data_dir,
                },
        }) => add_user(name, superuser, data_dir),
        Some(Command::Repl {
            url: Some(url),
            output,
            ..
        }) => repl_remote(&url, &output),
        Some(Command::Repl {
            url: None,
            storage,
            output,
        }) => repl(storage, &output),
        Some(Command::Checkpoint { data_dir }) => offline_checkpoint(data_dir),
        Some(Command::Basebackup {
            from,
            data_dir,
            replica_name,
        }) => basebackup(from, data_dir, replica_name),
        Some(Command::Promote { data_dir }) => promote(data_dir),
        Some(Command::Recover {
            data_dir,
            salvage_to,
            serve,
            listen,
            security,
        }) => recover(data_dir, salvage_to, serve.then_some((listen, security))),
        Some(Command::Import {
            files,
            table,
            target,
            format,
            no_header,
            delimiter,
        }) => transfer(&target, |mut t| async move {
            if !delimiter.is_ascii() {
                anyhow::bail!("the delimiter must be one ASCII character");
            }
            let csv = quiverdb::transfer::CsvOptions {
                header: !no_header,
                delimiter: delimiter as u8,
            };
            quiverdb::transfer::import(&mut t, &files, &table, format, &csv).await?;
            Ok(t)
        }),
        Some(Command::Export {
            file,
            table,
            query,
            target,
            format,
        }) => transfer(&target, |mut t| async move {
            let query = match (query, table) {
                (Some(query), _) => query,
                (None, Some(table)) => format!("SELECT * FROM {table}"),
                (None, None) => anyhow::bail!("give --table or --query"),
            };
            quiverdb::transfer::export(&mut t, &query, &file, format).await?;
            Ok(t)
        }),
        None => repl(cli.storage, &OutputArgs::default()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quiver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command line, with `serve --config FILE` settings filled in where
/// neither a flag nor an environment variable gave one.
fn parse_command_line() -> anyhow::Result<Cli> {
    use clap::parser::ValueSource;
    use clap::{CommandFactory, FromArgMatches};
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&args);
    let config = match matches.subcommand() {
        Some(("serve", serve)) => serve
            .get_one::<PathBuf>("config")
            .cloned()
            .map(|path| (path, serve.clone())),
        _ => None,
    };
    let Some((path, serve)) = config else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let command = Cli::command();
    let serve_command = command
        .find_subcommand("serve")
        .expect("serve is a subcommand");
    let known: Vec<String> = serve_command
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "config" && id != "help")
        .collect();
    for (key, value) in table {
        let id = key.replace('-', "_");
        if !known.contains(&id) {
            anyhow::bail!(
                "unknown setting \"{key}\" in {}; `quiver serve --help` lists the settings",
                path.display()
            );
        }
        if matches!(
            serve.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{}", id.replace('_', "-"));
        match value {
            toml::Value::Boolean(true) => args.push(flag.into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(v) => args.extend([flag.into(), v.into()]),
            toml::Value::Integer(v) => args.extend([flag.into(), v.to_string().into()]),
            toml::Value::Float(v) => args.extend([flag.into(), v.to_string().into()]),
            _ => anyhow::bail!(
                "setting \"{key}\" in {} must be a string, a number or a boolean",
                path.display()
            ),
        }
    }
    let matches = Cli::command()
        .try_get_matches_from(&args)
        .map_err(|e| anyhow::anyhow!("in {}: {}", path.display(), e.render()))?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// The tokio runtime of the server and the shell. Worker threads get
/// large stacks: planning deep expressions recurses.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(64 << 20)
        .build()
}

fn serve(
    listen: SocketAddr,
    storage: StorageArgs,
    security: ServerArgs,
) -> anyhow::Result<ExitCode> {
    let data_dir = if storage.memory {
        None
    } else {
        Some(
            storage
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        )
    };
    let runtime = runtime()?;
    runtime.block_on(async move {
        // Install the signal handlers before announcing the port, so a
        // signal sent right after start-up still shuts down cleanly.
        let shutdown = quiverdb::server::shutdown_signal()?;
        let (db, _lock) = match &security.replicate_from {
            Some(primary) => {
                let Some(dir) = data_dir else {
                    anyhow::bail!("a replica needs a data directory: drop --memory");
                };
                let lock = lock_data_dir(&dir)?;
                let options = quiverdb::replication::replica::ReplicaOptions {
                    primary: primary.clone(),
                    name: replica_name(&dir, security.replica_name.as_deref())?,
                    rebase_if_needed: security.rebase_if_needed,
                };
                let replica = quiverdb::replication::replica::open(&dir, options)
                    .await
                    .with_context(|| format!("could not start the replica in {}", dir.display()))?;
                let db = replica.db.clone();
                configure_storage(&db, &storage);
                quiverdb::replication::replica::spawn(replica)?;
                (db, Some(lock))
            }
            None => open_database(data_dir, &storage).await?,
        };
        if let Some(storage) = quiverdb::storage::storage_of(&db) {
            storage.set_max_replica_lag(security.max_replica_lag as u64);
            storage.set_file_grace(std::time::Duration::from_secs(
                security.checkpoint_file_grace,
            ));
        }
        db.replication
            .set_synchronous_replicas(security.synchronous_replicas);
        run_server(db, listen, &storage, &security, shutdown).await
    })
}

/// A replica's name: given, or made from its data directory's path (the
/// same across restarts, so it finds its slot again).
fn replica_name(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    if let Some(name) = given {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            anyhow::bail!("a replica name is letters, digits, _ and - (not {name:?})");
        }
        return Ok(name.to_string());
    }
    std::fs::create_dir_all(dir)?;
    let path = dir.canonicalize()?;
    let digest = crc32c::crc32c(path.to_string_lossy().as_bytes());
    Ok(format!("replica_{digest:08x}"))
}

fn basebackup(from: String, data_dir: PathBuf, name: Option<String>) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(&data_dir)?;
    let options = quiverdb::replication::replica::ReplicaOptions {
        primary: from,
        name: replica_name(&data_dir, name.as_deref())?,
        rebase_if_needed: false,
    };
    let start = runtime()?.block_on(quiverdb::replication::replica::base_backup(
        &options, &data_dir,
    ))?;
    println!(
        "base backup written to {}; replay starts at {start}. Start the replica with: quiver serve --data-dir {} --replicate-from URL --replica-name {}",
        data_dir.display(),
        data_dir.display(),
        options.name
    );
    Ok(ExitCode::SUCCESS)
}

fn promote(data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(&data_dir)?;
    let timeline =
        runtime()?.block_on(quiverdb::replication::replica::promote_offline(&data_dir))?;
    println!(
        "{} is a primary now, on timeline {timeline}: start it without --replicate-from",
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Serves `db` until `shutdown`, then checkpoints it.
async fn run_server(
    db: Arc<Database>,
    listen: SocketAddr,
    storage: &StorageArgs,
    security: &ServerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let tls = match (&security.tls_cert, &security.tls_key) {
        (Some(cert), Some(key)) => Some(quiverdb::server::tls::server_config(cert, key)?),
        _ => None,
    };
    let options = quiverdb::pgwire::ServerOptions {
        tls,
        admission: quiverdb::server::Admission {
            database: security.database.clone(),
            require_tls: security.require_tls,
            no_auth: security.insecure_no_auth,
            max_connections: security.max_connections.max(1),
            reserved_connections: 3.min(security.max_connections.saturating_sub(1)),
        },
        max_message_size: security.max_message_size,
    };
    // A panic ends only the connection it happened in (the connection
    // loop catches it); log it in one line rather than a backtrace.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    let memory = quiverdb::config::available_memory();
    let query_memory = security.memory_limit.unwrap_or(memory / 4);
    let table_memory = security.max_table_memory.unwrap_or(memory / 2);
    if !listen.ip().is_loopback() && !options.admission.no_auth && !db.catalog().has_passwords() {
        anyhow::bail!(
            "refusing to listen on {listen}: no role has a password, so anyone who can reach \
             this address could connect. Add a superuser first (quiver user add NAME \
             --superuser --data-dir DIR), listen on 127.0.0.1, or pass --insecure-no-auth \
             on a network you trust"
        );
    }
    db.limit_memory(query_memory, table_memory)?;
    let cores = quiverdb::engine::default_parallelism();
    db.set_executor(
        quiverdb::executor::QueryExecutor::dedicated(
            security.query_threads.unwrap_or(cores).max(1),
            security.max_concurrent_queries.unwrap_or(cores).max(1),
        )
        .context("could not start the query threads")?,
    );
    let session_defaults: Vec<(String, String)> = [
        ("statement_timeout", &security.statement_timeout),
        ("synchronous_commit", &security.synchronous_commit),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name.to_string(), value.clone()?)))
    .collect();
    quiverdb::sql::settings::Settings::with_defaults(&session_defaults)
        .map_err(|e| anyhow::anyhow!("invalid setting: {e}"))?;
    db.set_session_defaults(session_defaults);
    db.set_server_settings(server_settings(
        listen,
        storage,
        security,
        query_memory,
        table_memory,
    ));
    if let Some(ms) = security.log_min_duration_statement {
        db.log_statements_slower_than(std::time::Duration::from_millis(ms));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("could not listen on {listen}: {e}"))?;
    let metrics = match security.metrics_listen {
        Some(addr) => Some(
            quiverdb::http::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("could not listen for metrics on {addr}: {e}"))?,
        ),
        None => None,
    };
    let flight =
        match security.flight_listen {
            Some(addr) => {
                if !addr.ip().is_loopback()
                    && !options.admission.no_auth
                    && !db.catalog().has_passwords()
                {
                    anyhow::bail!(
                    "refusing to serve Flight SQL on {addr}: no role has a password (see --listen)"
                );
                }
                Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("could not listen for Flight SQL on {addr}: {e}")
                })?)
            }
            None => None,
        };
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port when given :0.
    println!("QuiverDB listening on {local}");
    tracing::info!("listening on {local}");
    // One shutdown signal stops every front end.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut flight_task = None;
    if let Some(flight) = flight {
        let flight_addr = flight.local_addr()?;
        println!("QuiverDB Flight SQL listening on {flight_addr}");
        tracing::info!("Flight SQL listening on {flight_addr}");
        let flight_options = quiverdb::flight::FlightOptions {
            tls: security.tls_cert.clone().zip(security.tls_key.clone()),
            admission: options.admission.clone(),
            idle_timeout: std::time::Duration::from_secs(security.flight_idle_timeout.max(1)),
        };
        let stopped = stop.clone().cancelled_owned();
        let db = db.clone();
        flight_task = Some(tokio::spawn(async move {
            if let Err(e) = quiverdb::flight::serve(flight, db, flight_options, stopped).await {
                tracing::error!("{e:#}");
            }
        }));
    }
    if let Some(metrics) = metrics {
        let metrics_addr = metrics.local_addr()?;
        println!("QuiverDB metrics on http://{metrics_addr}/metrics");
        tracing::info!("metrics on http://{metrics_addr}/metrics");
        tokio::spawn(quiverdb::http::serve(metrics, db.clone()));
    }
    let postgres = quiverdb::pgwire::serve(
        listener,
        db.clone(),
        options,
        stop.clone().cancelled_owned(),
    );
    let signal = async {
        shutdown.await;
        stop.cancel();
    };
    tokio::join!(postgres, signal);
    if let Some(task) = flight_task {
        // Calls still running (a long DoGet) get a moment to end; the
        // checkpoint does not wait for them longer.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    checkpoint_on_exit(&db).await;
    tracing::info!("server stopped");
    Ok(ExitCode::SUCCESS)
}

/// `quiver recover`: reads a damaged data directory as far as it can and
/// reports the rest; then serves it read-only or salvages it.
fn recover(
    data_dir: PathBuf,
    salvage_to: Option<PathBuf>,
    serve: Option<(SocketAddr, ServerArgs)>,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let shutdown = quiverdb::server::shutdown_signal()?;
        let _lock = lock_data_dir(&data_dir)?;
        let (db, report) = quiverdb::open_damaged(&data_dir)
            .await
            .with_context(|| format!("could not read data directory {}", data_dir.display()))?;
        let catalog = db.catalog();
        let tables: usize = catalog.schemas.values().map(|s| s.tables.len()).sum();
        println!(
            "read {}: {tables} table(s), {} WAL record(s) replayed",
            data_dir.display(),
            report.records_replayed
        );
        if report.is_clean() {
            println!("no damage found: everything was read");
        } else {
            println!("could not be brought back:");
            for problem in &report.problems {
                println!("  - {problem}");
            }
        }
        if let Some(target) = salvage_to {
            let stats = quiverdb::storage::salvage_into(&db, &target)?;
            println!(
                "salvaged into {}: {} table(s), {} row(s); serve it with: quiver serve --data-dir {}",
                target.display(),
                stats.tables_written,
                stats.rows,
                target.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some((listen, security)) = serve {
            db.set_read_only();
            let storage = StorageArgs {
                data_dir: Some(data_dir.clone()),
                ..StorageArgs::default()
            };
            println!("serving read-only: every change fails with 25006");
            return run_server(db, listen, &storage, &security, shutdown).await;
        }
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(3)
        })
    })
}

/// The effective server configuration, for SHOW ALL.
fn server_settings(
    listen: SocketAddr,
    storage: &StorageArgs,
    security: &ServerArgs,
    query_memory: usize,
    table_memory: usize,
) -> Vec<(String, String, String)> {
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let on = |b: bool| if b { "on" } else { "off" }.to_string();
    let data_dir = if storage.memory {
        String::new()
    } else {
        storage
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
            .display()
            .to_string()
    };
    [
        (
            "listen",
            listen.to_string(),
            "Address the server listens on.",
        ),
        ("data_dir", data_dir, "Data directory (empty: in memory)."),
        (
            "checkpoint_wal_mb",
            storage.checkpoint_wal_mb.to_string(),
            "WAL size, in MiB, that starts a checkpoint.",
        ),
        (
            "memory_limit",
            query_memory.to_string(),
            "Bytes of memory for query execution.",
        ),
        (
            "max_table_memory",
            table_memory.to_string(),
            "Bytes all tables together may hold.",
        ),
        (
            "database",
            security.database.clone(),
            "The database clients connect to (postgres is an alias of it).",
        ),
        (
            "max_connections",
            security.max_connections.to_string(),
            "Connections at once (3 kept for superusers).",
        ),
        (
            "max_concurrent_queries",
            security
                .max_concurrent_queries
                .unwrap_or_else(quiverdb::engine::default_parallelism)
                .to_string(),
            "Queries that read tables executing at once (the rest wait in order).",
        ),
        (
            "query_threads",
            security
                .query_threads
                .unwrap_or_else(quiverdb::engine::default_parallelism)
                .to_string(),
            "Threads that execute queries.",
        ),
        (
            "max_message_size",
            security.max_message_size.to_string(),
            "Largest message a client may send, in bytes.",
        ),
        (
            "checkpoint_interval",
            storage.checkpoint_interval.to_string(),
            "Seconds between timed checkpoints (0: none).",
        ),
        (
            "metrics_listen",
            security
                .metrics_listen
                .map(|a| a.to_string())
                .unwrap_or_default(),
            "Address of the Prometheus endpoint (empty: off).",
        ),
        (
            "flight_listen",
            security
                .flight_listen
                .map(|a| a.to_string())
                .unwrap_or_default(),
            "Address of the Arrow Flight SQL endpoint (empty: off).",
        ),
        (
            "tls_cert",
            path(&security.tls_cert),
            "TLS certificate chain (PEM).",
        ),
        (
            "require_tls",
            on(security.require_tls),
            "Whether plaintext logins are refused.",
        ),
        (
            "insecure_no_auth",
            on(security.insecure_no_auth),
            "Whether logins skip authentication.",
        ),
        (
            "log_min_duration_statement",
            security
                .log_min_duration_statement
                .map(|m| m.to_string())
                .unwrap_or_else(|| "-1".into()),
            "Statements running at least this many ms are logged (-1: none).",
        ),
    ]
    .into_iter()
    .map(|(n, v, d)| (n.to_string(), v, d.to_string()))
    .collect()
}

/// `quiver user add`: creates a login role in a data directory.
fn add_user(name: String, superuser: bool, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let password = match std::env::var("QUIVER_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let first = rpassword::prompt_password(format!("Password for {name}: "))?;
            let again = rpassword::prompt_password("Again: ")?;
            if first != again {
                anyhow::bail!("the passwords do not match");
            }
            first
        }
    };
    let runtime = runtime()?;
    let args = StorageArgs::default();
    let (db, _lock) = runtime.block_on(open_database(Some(data_dir.clone()), &args))?;
    let exists = db.catalog().roles.contains_key(&name);
    let role = quiverdb::engine::roles::Role {
        name: name.clone(),
        superuser,
        login: true,
        password: Some(quiverdb::engine::roles::password_verifier(&password)?),
        replication: false,
    };
    if role.password.is_some() && !superuser && !db.catalog().has_passwords() {
        anyhow::bail!(
            "the first user with a password must be a superuser (add --superuser): once a \
             password exists, every login needs one"
        );
    }
    let (_, ack) = db.put_role(None, role, !exists)?;
    runtime.block_on(ack.wait());
    runtime.block_on(checkpoint_on_exit(&db));
    let what = if exists { "updated" } else { "added" };
    println!("user {name} {what} in {}", data_dir.display());
    Ok(ExitCode::SUCCESS)
}

fn repl(storage: StorageArgs, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    // Like the sqlite3 and duckdb shells, the REPL is in-memory unless
    // given a data directory.
    let runtime = runtime()?;
    let (db, _lock) = runtime.block_on(open_database(storage.data_dir.clone(), &storage))?;
    let code = quiverdb::repl::run(db.clone(), &runtime, output.options())?;
    runtime.block_on(checkpoint_on_exit(&db));
    Ok(code)
}

fn repl_remote(url: &str, output: &OutputArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    quiverdb::repl::run_remote(url, &runtime, output.options())
}

/// Runs an import or export on a data directory or through a server.
fn transfer<F, Fut>(target: &TransferTarget, work: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(quiverdb::transfer::Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<quiverdb::transfer::Target>>,
{
    let runtime = runtime()?;
    if let Some(url) = &target.url {
        runtime.block_on(async {
            let t = quiverdb::transfer::Target::remote(url).await?;
            work(t).await
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let dir = target
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let args = StorageArgs::default();
    let (db, _lock) = runtime.block_on(open_database(Some(dir), &args))?;
    runtime.block_on(async {
        work(quiverdb::transfer::Target::embedded(db.clone())).await?;
        checkpoint_on_exit(&db).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn offline_checkpoint(data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let args = StorageArgs::default();
    let (db, _lock) = runtime.block_on(open_database(Some(data_dir), &args))?;
    let stats = quiverdb::storage::checkpoint(&db)?;
    println!(
        "checkpoint: {} table(s) written, {} unchanged, {} rows, {} bytes, {} ms",
        stats.tables_written, stats.tables_reused, stats.rows, stats.bytes_written, stats.millis
    );
    Ok(ExitCode::SUCCESS)
}
