//! The start of a PostgreSQL connection: the start-up packet, the SCRAM
//! exchange when passwords are in use, and the session's first settings.
//! Who may log in is decided by `server::admission`, as for every front
//! end; this file speaks it in the PostgreSQL protocol.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::auth::{ScramError, ScramExchange, SCRAM_SHA_256};
use super::handler::Backend;
use crate::engine::roles::ScramVerifier;
use crate::server::{Proof, Refusal};
use crate::sql::settings;

static PID_GENERATOR: LazyLock<RandomPidSecretKeyGenerator> =
    LazyLock::new(RandomPidSecretKeyGenerator::default);

/// The state of a login.
#[derive(Debug, Default)]
pub(super) enum Login {
    #[default]
    Started,
    /// AuthenticationSASL sent; waiting for client-first.
    AwaitingClientFirst,
    /// server-first sent; waiting for client-final.
    AwaitingClientFinal(Box<ScramExchange>),
}

/// The settings in a start-up `options` string: words split at
/// unescaped spaces (a backslash keeps the next character), each `-c
/// name=value`, `-cname=value` or `--name=value`.
fn startup_options(options: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut settings = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let assignment = if word == "-c" {
            words
                .next()
                .ok_or_else(|| "invalid command-line argument for server process: -c".to_string())?
        } else if let Some(rest) = word.strip_prefix("-c").or_else(|| word.strip_prefix("--")) {
            rest.to_string()
        } else {
            return Err(format!(
                "invalid command-line argument for server process: {word}"
            ));
        };
        let Some((name, value)) = assignment.split_once('=') else {
            return Err(format!("-c {assignment} requires a value"));
        };
        // `--statement-timeout=5s` names statement_timeout.
        settings.push((name.replace('-', "_"), value.to_string()));
    }
    Ok(settings)
}

/// A login the server refused, as the FATAL error that ends the connection.
fn refused(refusal: Refusal) -> PgWireError {
    fatal(refusal.code, refusal.message)
}

/// A FATAL error: the connection ends after it.
pub(super) fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        code.into(),
        message,
    )))
}

/// Whether a password message has a SASLInitialResponse's shape: the
/// mechanism's name, a NUL, and a length that the rest holds (-1: no
/// data). pgwire's decoder panics on a shorter one.
fn is_initial_response(message: &PasswordMessageFamily) -> bool {
    let PasswordMessageFamily::Raw(body) = message else {
        return matches!(message, PasswordMessageFamily::SASLInitialResponse(_));
    };
    let Some(nul) = body.iter().position(|&b| b == 0) else {
        return false;
    };
    let rest = &body[nul + 1..];
    let Some(len) = rest.get(..4) else {
        return false;
    };
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    len == -1 || usize::try_from(len).is_ok_and(|len| len <= rest.len() - 4)
}

/// The ParameterStatus values sent at start-up.
struct StartupParameters {
    values: HashMap<String, String>,
}

impl ServerParameterProvider for StartupParameters {
    fn server_parameters<C>(&self, _client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        Some(self.values.clone())
    }
}

#[async_trait]
impl StartupHandler for Backend {
    /// The start-up packet, then (when passwords are in use) the SCRAM
    /// exchange; every failure is FATAL and ends the connection.
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                self.begin_login(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let state = std::mem::take(&mut *self.login.lock());
                match state {
                    Login::AwaitingClientFirst => {
                        if !is_initial_response(&message) {
                            return Err(fatal(
                                "08P01",
                                "invalid SASLInitialResponse message".into(),
                            ));
                        }
                        let initial = message.into_sasl_initial_response()?;
                        if initial.auth_method != SCRAM_SHA_256 {
                            return Err(fatal(
                                "28000",
                                format!(
                                    "SASL authentication mechanism \"{}\" is not supported; use SCRAM-SHA-256",
                                    initial.auth_method
                                ),
                            ));
                        }
                        let user = login_user(client);
                        let verifier = self
                            .db
                            .catalog()
                            .roles
                            .get(&user)
                            .and_then(|r| r.password.as_deref())
                            .and_then(ScramVerifier::parse);
                        let data = initial.data.unwrap_or_default();
                        match ScramExchange::start(&user, verifier, &self.server.secret, &data) {
                            Ok((exchange, server_first)) => {
                                *self.login.lock() = Login::AwaitingClientFinal(Box::new(exchange));
                                client
                                    .send(PgWireBackendMessage::Authentication(
                                        Authentication::SASLContinue(server_first.into()),
                                    ))
                                    .await?;
                                Ok(())
                            }
                            Err(e) => Err(self.login_failed(&user, e).await),
                        }
                    }
                    Login::AwaitingClientFinal(exchange) => {
                        let response = message.into_sasl_response()?;
                        let user = login_user(client);
                        match exchange.finish(&response.data) {
                            Ok(server_final) => {
                                client
                                    .send(PgWireBackendMessage::Authentication(
                                        Authentication::SASLFinal(server_final.into()),
                                    ))
                                    .await?;
                                self.finish_login(client, false).await
                            }
                            Err(e) => Err(self.login_failed(&user, e).await),
                        }
                    }
                    Login::Started => Err(fatal(
                        "08P01",
                        "unexpected password message: no authentication was requested".into(),
                    )),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The user named in the start-up packet.
fn login_user<C: ClientInfo>(client: &C) -> String {
    client.metadata().get("user").cloned().unwrap_or_default()
}

impl Backend {
    /// Decides how this login proves who it is: no proof (trust), or SCRAM.
    async fn begin_login<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = login_user(client);
        let proof = self
            .server
            .admission
            .proof(&self.db, &user, self.peer.ip(), client.is_secure())
            .map_err(refused)?;
        if let Proof::Trust { implicit_superuser } = proof {
            return self.finish_login(client, implicit_superuser).await;
        }
        *self.login.lock() = Login::AwaitingClientFirst;
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        client
            .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                vec![SCRAM_SHA_256.to_string()],
            )))
            .await?;
        Ok(())
    }

    /// A failed login: the same answer for every reason, after a pause
    /// that makes guessing passwords slow.
    async fn login_failed(&self, user: &str, error: ScramError) -> PgWireError {
        match error {
            ScramError::Protocol(message) => fatal("08P01", message),
            ScramError::Failed => refused(
                self.server
                    .admission
                    .password_failed(user, self.peer.ip())
                    .await,
            ),
        }
    }

    /// The login is proven: check the role may log in and a connection
    /// slot is free, then start the session.
    async fn finish_login<C>(&self, client: &mut C, implicit_superuser: bool) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let user = login_user(client);
        tracing::Span::current().record("user", user.as_str());
        // PostgreSQL's default database (none named, or an empty name) is
        // the user's name.
        let requested = client
            .metadata()
            .get("database")
            .filter(|name| !name.is_empty())
            .cloned()
            .unwrap_or_else(|| user.clone());
        let database = self
            .server
            .admission
            .database(&requested)
            .map_err(refused)?;
        // This session is among the live ones already.
        let superuser = self
            .server
            .admission
            .admit(
                &self.db,
                &user,
                implicit_superuser,
                self.db.sessions.live().len(),
            )
            .map_err(refused)?
            .superuser;

        let replication = match client
            .metadata()
            .get("replication")
            .map(|v| v.to_ascii_lowercase())
        {
            None => false,
            Some(v) if matches!(v.as_str(), "false" | "off" | "no" | "0") => false,
            Some(v) if matches!(v.as_str(), "true" | "on" | "yes" | "1" | "database") => true,
            Some(v) => {
                return Err(fatal(
                    "22023",
                    format!("invalid value for parameter \"replication\": \"{v}\""),
                ))
            }
        };
        if replication {
            let may = superuser
                || self
                    .db
                    .catalog()
                    .roles
                    .get(&user)
                    .is_some_and(|role| role.replication);
            if !may {
                return Err(fatal(
                    "42501",
                    format!(
                        "permission denied to start WAL sender: role \"{user}\" needs the REPLICATION attribute (ALTER ROLE {user} REPLICATION) or superuser"
                    ),
                ));
            }
            self.replication.store(true, Ordering::Release);
        }

        let (pid, secret) = PID_GENERATOR.generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());

        let mut session = self.session.lock().await;
        // A CancelRequest presents the pid and this secret.
        session.info().set_cancel_secret(secret.to_bytes().to_vec());
        session.set_identity(&user, &database, pid, implicit_superuser);
        session.set_client(
            Some(self.peer.ip()),
            if replication {
                "walsender"
            } else {
                "client backend"
            },
        );
        // `options` (libpq's PGOPTIONS) first: `-c name=value` and
        // `--name=value` set what the client asked for, or the login fails
        // saying why, as in PostgreSQL; the other parameters come after
        // and win, as there.
        if let Some(options) = client.metadata().get("options") {
            for (name, value) in startup_options(options).map_err(|m| fatal("22023", m))? {
                session
                    .apply_startup_setting(&name, &value)
                    .map_err(|e| fatal(e.sqlstate().code(), e.to_string()))?;
            }
        }
        // Every other start-up parameter is a setting, as in PostgreSQL
        // (client_encoding aside: we always speak UTF8 and say so). A
        // driver's guess that does not apply (pgjdbc's TimeZone, say) does
        // not stop the login.
        for (name, value) in client.metadata() {
            if matches!(
                name.as_str(),
                "user" | "database" | "options" | "replication" | "client_encoding"
            ) {
                continue;
            }
            if let Err(e) = session.apply_startup_setting(name, value) {
                tracing::debug!("ignoring start-up parameter {name}={value}: {e}");
            }
        }
        let mut values = HashMap::new();
        for name in settings::REPORTED {
            values.insert(
                name.to_string(),
                session.settings().get(name).unwrap_or_default().to_string(),
            );
        }
        values.insert(
            "is_superuser".into(),
            if superuser { "on" } else { "off" }.into(),
        );
        values.insert("session_authorization".into(), user);
        drop(session);
        finish_authentication(client, &StartupParameters { values }).await?;
        self.logged_in.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn raw(body: &[u8]) -> PasswordMessageFamily {
        PasswordMessageFamily::Raw(BytesMut::from(body))
    }

    #[test]
    fn only_whole_initial_responses_reach_the_decoder() {
        assert!(is_initial_response(&raw(b"SCRAM-SHA-256\0\0\0\0\x02ab")));
        assert!(is_initial_response(&raw(
            b"SCRAM-SHA-256\0\xff\xff\xff\xff"
        )));
        assert!(!is_initial_response(&raw(b"xy")));
        assert!(!is_initial_response(&raw(b"SCRAM-SHA-256\0\0\0")));
        assert!(!is_initial_response(&raw(b"SCRAM-SHA-256\0\0\0\0\x09ab")));
        assert!(!is_initial_response(&raw(
            b"SCRAM-SHA-256\0\xff\xff\xff\xfe"
        )));
    }
}
