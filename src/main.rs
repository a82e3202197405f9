//! The `quiver` command: `quiver serve` runs the Postgres-protocol server,
//! `quiver` or `quiver repl` opens the interactive shell.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
}

const DEFAULT_DATA_DIR: &str = "quiver-data";

/// The data directory, locked against a second server using it.
struct DataDir {
    _lock: std::fs::File,
}

fn open_storage(args: &StorageArgs) -> anyhow::Result<Option<DataDir>> {
    if args.memory {
        return Ok(None);
    }
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    lock_data_dir(&dir).map(Some)
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
    tracing::warn!(
        "data directory {}: tables are kept in memory only for now; they are lost when the process exits",
        dir.display()
    );
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
    let _data_dir = open_storage(&storage)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // Install the signal handlers before announcing the port, so a
        // signal sent right after start-up still shuts down cleanly.
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("could not listen on {listen}: {e}"))?;
        let local = listener.local_addr()?;
        // Tests and scripts read this line to learn the port when given :0.
        println!("QuiverDB listening on {local}");
        tracing::info!("listening on {local}");
        let db = Database::new();
        quiverdb::pg::serve(listener, db, shutdown).await;
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
    let _data_dir = match &storage.data_dir {
        Some(dir) => Some(lock_data_dir(dir)?),
        None => None,
    };
    quiverdb::repl::run(Database::new())
}
