//! The `quiver` command: `quiver serve` runs the Postgres-protocol server,
//! `quiver` or `quiver repl` opens the interactive shell.

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
}

#[derive(Subcommand)]
enum Command {
    /// Serve clients over the PostgreSQL wire protocol.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5432", env = "QUIVER_LISTEN")]
        listen: SocketAddr,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Open the interactive SQL shell on an embedded database (the default).
    Repl {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Write a checkpoint of a data directory (the server must not be
    /// running on it) and exit.
    Checkpoint {
        /// Data directory.
        #[arg(long, env = "QUIVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
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
    let db = quiverdb::storage::open(&dir)
        .await
        .with_context(|| format!("could not open data directory {}", dir.display()))?;
    if let Some(storage) = db.storage() {
        storage.set_checkpoint_wal_bytes(args.checkpoint_wal_mb.max(1) * 1024 * 1024);
    }
    Ok((db, Some(lock)))
}

/// A checkpoint on the way out, so the next start has little WAL to replay.
async fn checkpoint_on_exit(db: &Arc<Database>) {
    if db.storage().is_none() {
        return;
    }
    let db = db.clone();
    match tokio::task::spawn_blocking(move || quiverdb::storage::checkpoint(&db)).await {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve { listen, storage }) => serve(listen, storage),
        Some(Command::Repl { storage }) => repl(storage),
        Some(Command::Checkpoint { data_dir }) => offline_checkpoint(data_dir),
        None => repl(cli.storage),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quiver: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(listen: SocketAddr, storage: StorageArgs) -> anyhow::Result<ExitCode> {
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
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // Install the signal handlers before announcing the port, so a
        // signal sent right after start-up still shuts down cleanly.
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("could not listen on {listen}: {e}"))?;
        let local = listener.local_addr()?;
        let (db, _lock) = open_database(data_dir, &storage).await?;
        // Tests and scripts read this line to learn the port when given :0.
        println!("QuiverDB listening on {local}");
        tracing::info!("listening on {local}");
        quiverdb::pg::serve(listener, db.clone(), shutdown).await;
        checkpoint_on_exit(&db).await;
        tracing::info!("server stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on SIGINT or SIGTERM; the handlers are in place on return.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

fn repl(storage: StorageArgs) -> anyhow::Result<ExitCode> {
    // Like the sqlite3 and duckdb shells, the REPL is in-memory unless
    // given a data directory.
    let runtime = tokio::runtime::Runtime::new()?;
    let (db, _lock) = runtime.block_on(open_database(storage.data_dir.clone(), &storage))?;
    let code = quiverdb::repl::run(db.clone(), &runtime)?;
    runtime.block_on(checkpoint_on_exit(&db));
    Ok(code)
}

fn offline_checkpoint(data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let args = StorageArgs::default();
    let (db, _lock) = runtime.block_on(open_database(Some(data_dir), &args))?;
    let stats = quiverdb::storage::checkpoint(&db)?;
    println!(
        "checkpoint: {} table(s) written, {} unchanged, {} rows, {} bytes, {} ms",
        stats.tables_written, stats.tables_reused, stats.rows, stats.bytes_written, stats.millis
    );
    Ok(ExitCode::SUCCESS)
}
