//! What every network front end shares: the login rules and connection
//! limits ([`admission`]), TLS setup ([`tls`]), cancelling a session's
//! statement by its key, and waiting for a shutdown signal. The front ends
//! (`pgwire`, `http`, later Flight SQL) build on it and on `session`, never
//! on each other.

pub mod admission;
pub mod tls;

pub use admission::{cancel, Admission, Admitted, Proof, Refusal};

/// Completes on SIGINT or SIGTERM; the handlers are in place on return.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
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
