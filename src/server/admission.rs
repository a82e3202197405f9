//! Who may log in, the same for every front end: TLS when it is required,
//! trust while no role has a password (from this machine only, unless
//! authentication is off), a database that exists (the server's one, or
//! `postgres`, its alias), a role with LOGIN, and a free connection slot
//! (the last few kept for superusers). A front end asks [`Admission::proof`]
//! how a login must prove who it is, runs the proof in its own protocol
//! (SCRAM for PostgreSQL), then asks [`Admission::admit`] for the session's
//! identity. Every refusal carries the SQLSTATE PostgreSQL gives it.

use std::net::IpAddr;
use std::time::Duration;

use crate::engine::roles::ScramVerifier;
use crate::engine::Database;
use crate::names::{DATABASE_ALIAS, DEFAULT_DATABASE};

/// A failed password answers after this pause, whatever the reason, so
/// guessing is slow and a wrong password looks like an unknown user.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(500);

/// A login refused: the SQLSTATE and the message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: String) -> Refusal {
        Refusal { code, message }
    }
}

/// What a login must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// Nothing: trusted. `implicit_superuser` is set for a name that is no
    /// role (before roles exist, whoever connects administers).
    Trust { implicit_superuser: bool },
    /// A password, checked against the role's SCRAM verifier.
    Password,
}

/// A login the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub user: String,
    pub superuser: bool,
    pub implicit_superuser: bool,
}

/// The login rules of one server.
#[derive(Debug, Clone)]
pub struct Admission {
    /// The one database the server serves; `postgres` is an alias of it.
    pub database: String,
    /// Refuse logins over plaintext connections.
    pub require_tls: bool,
    /// Accept every login without a password, from anywhere.
    pub no_auth: bool,
    pub max_connections: usize,
    /// Connection slots only superusers may take.
    pub reserved_connections: usize,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            database: DEFAULT_DATABASE.to_string(),
            require_tls: false,
            no_auth: false,
            max_connections: 100,
            reserved_connections: 3,
        }
    }
}

impl Admission {
    /// How `user`, connecting from `peer` over TLS or not, proves who it
    /// is, or why it may not log in at all.
    pub fn proof(
        &self,
        db: &Database,
        user: &str,
        peer: IpAddr,
        tls: bool,
    ) -> Result<Proof, Refusal> {
        if user.is_empty() {
            return Err(Refusal::new(
                "28000",
                "no PostgreSQL user name specified in startup packet".into(),
            ));
        }
        if self.require_tls && !tls {
            return Err(Refusal::new(
                "28000",
                format!(
                    "connection for user \"{user}\" refused: this server requires TLS (connect with sslmode=require)"
                ),
            ));
        }
        let catalog = db.catalog();
        let implicit_superuser = !catalog.roles.contains_key(user);
        if self.no_auth {
            return Ok(Proof::Trust { implicit_superuser });
        }
        if !catalog.has_passwords() {
            if !peer.is_loopback() {
                return Err(Refusal::new(
                    "28000",
                    format!(
                        "connection from {peer} refused: no role has a password yet, so only connections from this machine are accepted; create a superuser with a password first (quiver user add NAME --superuser)"
                    ),
                ));
            }
            return Ok(Proof::Trust { implicit_superuser });
        }
        Ok(Proof::Password)
    }

    /// A login whose proof succeeded (or was not needed): the role may log
    /// in and a connection slot is free. `live_sessions` counts the
    /// sessions connected now, this one among them.
    pub fn admit(
        &self,
        db: &Database,
        user: &str,
        implicit_superuser: bool,
        live_sessions: usize,
    ) -> Result<Admitted, Refusal> {
        let catalog = db.catalog();
        let role = catalog.roles.get(user);
        if role.is_some_and(|r| !r.login) {
            return Err(Refusal::new(
                "28000",
                format!("role \"{user}\" is not permitted to log in"),
            ));
        }
        let superuser = implicit_superuser || role.is_some_and(|r| r.superuser);
        let limit = if superuser {
            self.max_connections
        } else {
            self.max_connections
                .saturating_sub(self.reserved_connections)
        };
        if live_sessions > limit {
            let message = if superuser {
                "sorry, too many clients already".to_string()
            } else {
                "remaining connection slots are reserved for roles with the SUPERUSER attribute"
                    .to_string()
            };
            return Err(Refusal::new("53300", message));
        }
        Ok(Admitted {
            user: user.to_string(),
            superuser,
            implicit_superuser,
        })
    }

    /// The database a login asked for (PostgreSQL's default: the user's
    /// name), as the session names it: the server's one database, which
    /// `postgres` is an alias of; any other name does not exist (3D000).
    pub fn database(&self, requested: &str) -> Result<String, Refusal> {
        if requested == self.database || requested == DATABASE_ALIAS {
            Ok(self.database.clone())
        } else {
            Err(Refusal::new(
                "3D000",
                format!("database \"{requested}\" does not exist"),
            ))
        }
    }

    /// Whether `password` is `user`'s, for a front end whose login sends
    /// the password itself (Flight SQL's HTTP Basic) rather than a SCRAM
    /// proof. An unknown user, or one without a password, never matches,
    /// after the same work as a known one. CPU-bound (PBKDF2): call it off
    /// the async runtime.
    pub fn password_matches(&self, db: &Database, user: &str, password: &str) -> bool {
        let verifier = db
            .catalog()
            .roles
            .get(user)
            .and_then(|r| r.password.as_deref())
            .and_then(ScramVerifier::parse);
        match verifier {
            Some(verifier) => verifier.matches_password(password),
            None => {
                let _ = ScramVerifier::new(password);
                false
            }
        }
    }

    /// A wrong password (or an unknown user: the same answer), after
    /// [`AUTH_FAILURE_DELAY`].
    pub async fn password_failed(&self, user: &str, peer: IpAddr) -> Refusal {
        tracing::info!(%user, %peer, "password authentication failed");
        crate::metrics::metrics().login_failed();
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
        Refusal::new(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        )
    }
}

/// Cancels the running statement of the session that `pid` and `secret`
/// name (PostgreSQL's CancelRequest; a front end with its own cancel
/// calls it too). Returns whether one was found.
pub fn cancel(db: &Database, pid: i32, secret: &[u8]) -> bool {
    let target = db
        .sessions
        .live()
        .into_iter()
        .find(|session| session.identity().pid == pid && session.cancel_secret_is(secret));
    match target {
        Some(session) => session.cancel(),
        None => {
            tracing::debug!(pid, "cancel request for no session");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::roles::Role;

    fn loopback() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    fn remote() -> IpAddr {
        IpAddr::from([10, 0, 0, 7])
    }

    fn with_password(db: &Database, name: &str, superuser: bool, login: bool) {
        let role = Role {
            name: name.into(),
            superuser,
            login,
            password: Some(crate::engine::roles::password_verifier("secret").unwrap()),
            replication: false,
        };
        let (_, ack) = db.put_role(None, role, true).unwrap();
        drop(ack);
    }

    #[test]
    fn without_passwords_only_this_machine_is_trusted() {
        let db = Database::new();
        let rules = Admission::default();
        assert_eq!(
            rules.proof(&db, "anyone", loopback(), false),
            Ok(Proof::Trust {
                implicit_superuser: true
            })
        );
        let refused = rules.proof(&db, "anyone", remote(), true).unwrap_err();
        assert_eq!(refused.code, "28000");
        let open = Admission {
            no_auth: true,
            ..Default::default()
        };
        assert!(open.proof(&db, "anyone", remote(), false).is_ok());
    }

    #[test]
    fn passwords_tls_and_login_are_enforced() {
        let db = Database::new();
        with_password(&db, "admin", true, true);
        with_password(&db, "nologin", false, false);
        let rules = Admission {
            require_tls: true,
            ..Default::default()
        };
        assert_eq!(
            rules.proof(&db, "admin", remote(), false).unwrap_err().code,
            "28000"
        );
        assert_eq!(
            rules.proof(&db, "admin", remote(), true),
            Ok(Proof::Password)
        );
        assert_eq!(
            rules.proof(&db, "", loopback(), true).unwrap_err().code,
            "28000"
        );
        assert_eq!(
            rules.admit(&db, "nologin", false, 1).unwrap_err().code,
            "28000"
        );
        assert!(rules.admit(&db, "admin", false, 1).unwrap().superuser);
        assert!(rules.password_matches(&db, "admin", "secret"));
        assert!(!rules.password_matches(&db, "admin", "wrong"));
        assert!(!rules.password_matches(&db, "nobody", "secret"));
    }

    #[test]
    fn one_database_and_its_alias_exist() {
        let rules = Admission::default();
        assert_eq!(rules.database("quiver").unwrap(), "quiver");
        assert_eq!(rules.database("postgres").unwrap(), "quiver");
        let refused = rules.database("Quiver").unwrap_err();
        assert_eq!(refused.code, "3D000");
        assert_eq!(refused.message, "database \"Quiver\" does not exist");
        let named = Admission {
            database: "analytics".into(),
            ..Default::default()
        };
        assert_eq!(named.database("postgres").unwrap(), "analytics");
        assert_eq!(named.database("quiver").unwrap_err().code, "3D000");
    }

    #[test]
    fn the_last_slots_are_for_superusers() {
        let db = Database::new();
        with_password(&db, "admin", true, true);
        with_password(&db, "app", false, true);
        let rules = Admission {
            max_connections: 5,
            reserved_connections: 2,
            ..Default::default()
        };
        assert!(rules.admit(&db, "app", false, 3).is_ok());
        assert_eq!(rules.admit(&db, "app", false, 4).unwrap_err().code, "53300");
        assert!(rules.admit(&db, "admin", false, 5).is_ok());
        assert_eq!(
            rules.admit(&db, "admin", false, 6).unwrap_err().code,
            "53300"
        );
    }
}
