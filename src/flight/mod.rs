//! The Arrow Flight SQL front end: gRPC beside the PostgreSQL protocol,
//! over the same sessions, login rules, privileges, transactions and
//! WAL. Results go out as the Arrow batches the plan produces, and bulk
//! ingest takes the client's batches as they are.

mod arrow_out;
mod metadata;
mod service;
mod sessions;
mod status;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arrow_flight::flight_service_server::FlightServiceServer;
use futures::StreamExt;
use tokio::net::TcpListener;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use crate::engine::Database;
use crate::server::Admission;
pub use status::SQLSTATE_KEY;

/// The largest message a client may send or receive (a bound batch of
/// an ingest, a result batch), in bytes.
const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// HTTP/2 flow-control window of one stream: what a client may send
/// before the server acknowledges it.
const STREAM_WINDOW: u32 = 16 << 20;

/// How the Flight SQL front end serves.
#[derive(Clone)]
pub struct FlightOptions {
    /// TLS certificate chain and key (PEM files): with them every call
    /// must come over TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Who may log in (the same rules as the PostgreSQL front end).
    pub admission: Admission,
    /// A session (its bearer token) ends after this long without a call.
    pub idle_timeout: Duration,
}

/// Serves Flight SQL on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    db: Arc<Database>,
    options: FlightOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let registry = sessions::Registry::new(options.idle_timeout);
    sessions::Registry::sweep_until_dropped(&registry);
    let service = service::QuiverFlight {
        db,
        admission: options.admission,
        tls: options.tls.is_some(),
        registry,
    };
    // HTTP/2's default windows (64 KiB) let a client send 64 KiB before
    // waiting for the server's WINDOW_UPDATE; a bulk ingest sends about a
    // GB in 14 MB messages. A stream may have 16 MiB in flight, about one
    // message.
    // A client that vanished without closing its connection (a host gone,
    // a cable pulled) would hold its session, and an ingest its rows,
    // forever: the server pings each connection after a minute of
    // silence and drops it when the ping goes unanswered.
    let mut server = Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(2 * STREAM_WINDOW)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some((cert, key)) = &options.tls {
        let cert = std::fs::read(cert)
            .with_context(|| format!("could not read the TLS certificate {}", cert.display()))?;
        let key = std::fs::read(key)
            .with_context(|| format!("could not read the TLS key {}", key.display()))?;
        server = server
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .context("the TLS certificate and key do not make a usable pair")?;
    }
    let flight = FlightServiceServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    // Small replies (GetFlightInfo, actions) leave at once.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).inspect(|accepted| {
        if let Ok(stream) = accepted {
            let _ = stream.set_nodelay(true);
        }
    });
    server
        .add_service(flight)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("the Flight SQL server stopped")
}
