//! TLS for the client, as libpq does it: `sslmode` (`disable`, `allow`,
//! `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert`, from
//! the connection string or `PGSSLMODE` / `PGSSLROOTCERT`. The default is
//! `prefer`: TLS when the server offers it. As in libpq, `prefer` and
//! `require` check the server's certificate against a root certificate
//! only when one is named (or `~/.postgresql/root.crt` exists); without
//! one they encrypt but do not authenticate the server. `verify-ca` checks
//! the chain, `verify-full` the chain and the host name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, Error> {
        Ok(match value {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plaintext first; TLS when the server
            // offers it is at least as safe, and one round trip shorter.
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode value: \"{other}\" (disable, allow, prefer, require, verify-ca or verify-full)"
                ))
            }
        })
    }
}

/// What a connection string asks of TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    /// The PEM file of the certificates the server's chain must end in.
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (URL or
/// `key=value` form; `tokio_postgres::Config` knows neither
/// `sslrootcert` nor the verify modes) and returns the rest with them.
pub fn split_options(url: &str) -> Result<(String, TlsOptions), Error> {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: String| -> bool {
        match key {
            "sslmode" => mode = Some(value),
            "sslrootcert" => root = Some(value),
            _ => return false,
        }
        true
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        let value = percent_encoding::percent_decode_str(value)
                            .decode_utf8_lossy()
                            .into_owned();
                        !take(key, value)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        url.split_whitespace()
            .filter(|pair| match pair.split_once('=') {
                Some((key, value)) => !take(key.trim(), value.trim_matches('\'').to_string()),
                None => true,
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mode = match mode.or_else(|| std::env::var("PGSSLMODE").ok()) {
        Some(mode) => SslMode::parse(&mode)?,
        None => SslMode::Prefer,
    };
    let root_cert = root
        .or_else(|| std::env::var("PGSSLROOTCERT").ok())
        .map(PathBuf::from)
        .or_else(|| {
            let default = Path::new(&std::env::var("HOME").ok()?).join(".postgresql/root.crt");
            default.exists().then_some(default)
        });
    if root_cert.as_deref() == Some(Path::new("system")) {
        return Err(
            "sslrootcert=system is not supported: name a PEM file of root certificates".into(),
        );
    }
    if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
        return Err(format!(
            "sslmode={} needs a root certificate: give sslrootcert=FILE (or PGSSLROOTCERT, or ~/.postgresql/root.crt)",
            if mode == SslMode::VerifyCa { "verify-ca" } else { "verify-full" }
        ));
    }
    Ok((rest, TlsOptions { mode, root_cert }))
}

/// An encrypted stream, or the plain one when TLS was not asked for or
/// (with `prefer`) the server declined it.
pub enum Negotiated {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Sends SSLRequest as libpq does and, when the server agrees, runs the
/// TLS handshake with the checks `options` asks for.
pub async fn negotiate(
    mut tcp: TcpStream,
    host: &str,
    options: &TlsOptions,
) -> Result<Negotiated, Error> {
    if options.mode == SslMode::Disable {
        return Ok(Negotiated::Plain(tcp));
    }
    let config = client_config(options)?;
    let mut request = bytes::BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut request);
    tcp.write_all(&request)
        .await
        .map_err(|e| format!("could not send the SSL request: {e}"))?;
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| format!("the server closed the connection during the SSL request: {e}"))?;
    match answer {
        b'S' => {}
        b'N' if options.mode == SslMode::Prefer => return Ok(Negotiated::Plain(tcp)),
        b'N' => {
            return Err(
                "the server does not support TLS, but sslmode asks for it (use sslmode=prefer or disable)"
                    .into(),
            )
        }
        other => {
            return Err(format!(
                "unexpected answer to the SSL request: byte {other:#04x}"
            ))
        }
    }
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("\"{host}\" is not a valid host name for TLS"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))?;
    Ok(Negotiated::Tls(Box::new(stream)))
}

fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match &options.root_cert {
        None => Arc::new(EncryptOnly(provider.clone())),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!(
                        "could not read the root certificate {}: {e}",
                        path.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("{} holds no usable certificate", path.display()));
            }
            let chain =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("root certificates of {}: {e}", path.display()))?;
            if options.mode == SslMode::VerifyFull {
                chain
            } else {
                Arc::new(ChainOnly(chain))
            }
        }
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `prefer` and `require` without a root certificate: any certificate is
/// taken (as libpq takes it), but the handshake's signatures are still
/// checked against it.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and `prefer`/`require` with a root certificate): the chain
/// must end in a trusted root; the host name is not compared.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, SslMode, Option<PathBuf>) {
        let (rest, options) = split_options(url).unwrap();
        (rest, options.mode, options.root_cert)
    }

    #[test]
    fn ssl_options_are_taken_out_of_urls_and_keyword_strings() {
        let (rest, mode, root) =
            split("postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem");
        assert_eq!(rest, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(mode, SslMode::VerifyFull);
        assert_eq!(root, Some(PathBuf::from("/tmp/ca.pem")));
        let (rest, mode, root) = split("postgres://h/db?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!((rest.as_str(), mode), ("postgres://h/db", SslMode::Require));
        assert_eq!(root, Some(PathBuf::from("/ca.pem")));
        let (rest, mode, _) = split("host=h port=5 sslmode=disable user=u");
        assert_eq!(
            (rest.as_str(), mode),
            ("host=h port=5 user=u", SslMode::Disable)
        );
    }

    #[test]
    fn verify_modes_need_a_root_certificate_and_bad_modes_are_refused() {
        if std::env::var_os("PGSSLROOTCERT").is_some() {
            return;
        }
        let home_root = std::env::var("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt").exists())
            .unwrap_or(false);
        if !home_root {
            let e = split_options("postgres://h/db?sslmode=verify-ca").unwrap_err();
            assert!(e.contains("needs a root certificate"), "{e}");
        }
        let e = split_options("postgres://h/db?sslmode=sometimes").unwrap_err();
        assert!(e.contains("invalid sslmode"), "{e}");
    }
}
