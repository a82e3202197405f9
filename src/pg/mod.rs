//! The PostgreSQL wire protocol front end: accepts connections and serves
//! each with its own `Session` through pgwire.

mod auth;
mod connection;
mod handler;
mod params;

use std::future::Future;
use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use connection::FrameGuard;
pub use handler::error_info;
use handler::ConnectionHandlers;

use crate::Database;

/// How the server treats connections: TLS, authentication and limits.
#[derive(Clone)]
pub struct ServerOptions {
    pub tls: Option<TlsAcceptor>,
    /// Refuse logins over plaintext connections.
    pub require_tls: bool,
    /// Accept every login without a password, from anywhere.
    pub no_auth: bool,
    /// The largest message a client may send, in bytes.
    pub max_message_size: usize,
    pub max_connections: usize,
    /// Connection slots only superusers may take.
    pub reserved_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tls: None,
            require_tls: false,
            no_auth: false,
            max_message_size: 64 << 20,
            max_connections: 100,
            reserved_connections: 3,
        }
    }
}

/// What every connection of one server shares.
pub struct ServerContext {
    pub require_tls: bool,
    pub no_auth: bool,
    pub max_connections: usize,
    pub reserved_connections: usize,
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
        require_tls: options.require_tls,
        no_auth: options.no_auth,
        max_connections: options.max_connections,
        reserved_connections: options.reserved_connections,
        secret: crate::engine::roles::random_bytes(),
    });
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
                let tls = options.tls.clone();
                let max_message_size = options.max_message_size;
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
