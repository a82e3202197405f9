//! The PostgreSQL wire protocol front end: accepts connections and serves
//! each with its own `Session` through pgwire.

pub mod catalog;
mod copy;
mod handler;
mod params;
pub mod types;

use std::future::Future;
use std::sync::Arc;

use pgwire::api::ConnectionManager;
use pgwire::tokio::process_socket;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use handler::error_info;
use handler::ConnectionHandlers;

use crate::Database;

/// Serves connections from `listener` until `shutdown` completes, then
/// closes the remaining connections.
pub async fn serve(listener: TcpListener, db: Arc<Database>, shutdown: impl Future<Output = ()>) {
    let manager = Arc::new(ConnectionManager::new());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving
                        // the connections we have.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let handlers = ConnectionHandlers::new(db.clone(), manager.clone());
                let span = tracing::info_span!("connection", %peer);
                connections.spawn(
                    async move {
                        tracing::debug!("connected");
                        if let Err(e) = process_socket(socket, None, handlers).await {
                            tracing::debug!("connection ended with error: {e}");
                        }
                        tracing::debug!("disconnected");
                    }
                    .instrument(span),
                );
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::info!("shutting down: closing {} connection(s)", connections.len());
    connections.shutdown().await;
}
