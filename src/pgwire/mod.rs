//! The PostgreSQL wire protocol front end: accepts connections and serves
//! each with its own `Session` through pgwire.

mod auth;
mod coalesce;
mod connection;
mod handler;
mod params;
mod replication;
mod startup;

use std::future::Future;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use connection::FrameGuard;
pub use handler::error_info;
use handler::ConnectionHandlers;

use crate::engine::Database;
use crate::server::Admission;

/// How the PostgreSQL front end treats connections.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// TLS, when the server has a certificate (`crate::server::tls`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Who may log in, and how many at once.
    pub admission: Admission,
    /// The largest message a client may send, in bytes (0: 64 MiB).
    pub max_message_size: usize,
}

/// What every connection of one server shares.
pub struct ServerContext {
    pub admission: Admission,
    /// Derives the salts of SCRAM exchanges for names that are no role.
    pub secret: [u8; 32],
}

/// Serves connections from `listener` until `shutdown` completes, then
/// closes the remaining connections.
pub async fn serve(
    listener: TcpListener,
    db: Arc<Database>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let server = Arc::new(ServerContext {
        admission: options.admission.clone(),
        secret: crate::engine::roles::random_bytes(),
    });
    // PostgreSQL 17 clients may start TLS directly, naming this protocol.
    let tls = options.tls.map(|config| {
        let mut config = config.as_ref().clone();
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let max_message_size = match options.max_message_size {
        0 => 64 << 20,
        n => n,
    };
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
                crate::metrics::metrics().connection_accepted();
                let handlers = ConnectionHandlers::new(db.clone(), server.clone(), peer);
                let tls = tls.clone();
                let span = tracing::info_span!("connection", %peer, user = tracing::field::Empty);
                connections.spawn(
                    async move {
                        tracing::debug!("connected");
                        if let Err(e) =
                            connection::serve_connection(socket, tls, handlers, max_message_size).await
                        {
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
