//! Roles, their passwords (as SCRAM-SHA-256 verifiers only) and the
//! privileges granted on schemas and relations. All of it is part of the
//! catalog: changed by logged, transactional catalog changes like DDL.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

use super::{CatalogState, QualifiedName};
use crate::error::{QuiverError, Result};

/// A role: a user when it may log in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Role {
    pub name: String,
    pub superuser: bool,
    pub login: bool,
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as
    /// PostgreSQL stores it; never the password itself.
    pub password: Option<String>,
    /// May open replication connections (base backups, WAL streaming).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replication: bool,
}

/// What a grant allows, as bits.
pub type Privileges = u8;
pub const SELECT: Privileges = 1;
pub const INSERT: Privileges = 2;
pub const UPDATE: Privileges = 4;
pub const DELETE: Privileges = 8;
pub const TRUNCATE: Privileges = 16;
/// All privileges on a table.
pub const TABLE_ALL: Privileges = SELECT | INSERT | UPDATE | DELETE | TRUNCATE;
pub const USAGE: Privileges = 32;
pub const CREATE: Privileges = 64;
/// All privileges on a schema.
pub const SCHEMA_ALL: Privileges = USAGE | CREATE;

/// The grantee that stands for every role.
pub const PUBLIC: &str = "public";

/// Who is acting: a role name, and whether the session logged in without
/// authentication under a name that is no role (then it is a superuser, as
/// every session is in a database with no passwords).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub name: &'a str,
    pub implicit_superuser: bool,
}

impl CatalogState {
    pub fn is_superuser(&self, actor: Actor<'_>) -> bool {
        match self.roles.get(actor.name) {
            Some(role) => role.superuser,
            None => actor.implicit_superuser,
        }
    }

    /// Whether `name` is a role that privilege checks apply to (an owner
    /// that is no role is a session that was a superuser).
    pub fn is_restricted_role(&self, name: &str) -> bool {
        self.roles.get(name).is_some_and(|r| !r.superuser)
    }

    /// The owner and grants of `object`; the `public` schema, when nobody
    /// changed it, lets everyone look up names in it (as in PostgreSQL 15).
    pub fn effective_acl(&self, object: &AclObject) -> Acl {
        if let Some(acl) = self.acls.get(object) {
            return acl.clone();
        }
        let mut acl = Acl::default();
        if *object == AclObject::Schema(super::DEFAULT_SCHEMA.to_string()) {
            acl.grant(PUBLIC, USAGE);
        }
        acl
    }

    /// What `actor` may do with `object`.
    pub fn privileges_on(&self, actor: Actor<'_>, object: &AclObject) -> Privileges {
        let all = match object {
            AclObject::Schema(_) => SCHEMA_ALL,
            // USAGE is a sequence's privilege.
            AclObject::Relation { .. } => TABLE_ALL | USAGE,
        };
        if self.is_superuser(actor) {
            return all;
        }
        self.effective_acl(object).allowed(actor.name, all)
    }

    /// Whether `actor` owns `object` (or is a superuser).
    pub fn owns(&self, actor: Actor<'_>, object: &AclObject) -> bool {
        self.is_superuser(actor) || self.acls.get(object).is_some_and(|a| a.owner == actor.name)
    }
}

/// The names of privileges, in PostgreSQL's order, with their bits.
pub const PRIVILEGE_NAMES: [(&str, Privileges); 7] = [
    ("SELECT", SELECT),
    ("INSERT", INSERT),
    ("UPDATE", UPDATE),
    ("DELETE", DELETE),
    ("TRUNCATE", TRUNCATE),
    ("USAGE", USAGE),
    ("CREATE", CREATE),
];

/// What an access-control list is attached to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AclObject {
    Schema(String),
    Relation { schema: String, name: String },
}

impl AclObject {
    pub fn relation(name: &QualifiedName) -> AclObject {
        AclObject::Relation {
            schema: name.schema.clone(),
            name: name.name.clone(),
        }
    }
}

/// The owner of an object and what others were granted on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acl {
    pub owner: String,
    /// Grantee (a role name, or [`PUBLIC`]) to privileges.
    pub grants: BTreeMap<String, Privileges>,
}

impl Acl {
    pub fn owned_by(owner: &str) -> Acl {
        Acl {
            owner: owner.to_string(),
            grants: BTreeMap::new(),
        }
    }

    /// What `role` may do: everything as owner, else its grants and
    /// PUBLIC's.
    pub fn allowed(&self, role: &str, all: Privileges) -> Privileges {
        if self.owner == role {
            return all;
        }
        self.grants.get(role).copied().unwrap_or(0) | self.grants.get(PUBLIC).copied().unwrap_or(0)
    }

    pub fn grant(&mut self, grantee: &str, privileges: Privileges) {
        *self.grants.entry(grantee.to_string()).or_insert(0) |= privileges;
    }

    pub fn revoke(&mut self, grantee: &str, privileges: Privileges) {
        if let Some(held) = self.grants.get_mut(grantee) {
            *held &= !privileges;
            if *held == 0 {
                self.grants.remove(grantee);
            }
        }
    }

    /// PostgreSQL's aclitem[] text, e.g. `{alice=arwdD/alice,=r/alice}`.
    pub fn to_aclitems(&self, all: Privileges) -> String {
        let letters = |p: Privileges| -> String {
            [
                (INSERT, 'a'),
                (SELECT, 'r'),
                (UPDATE, 'w'),
                (DELETE, 'd'),
                (TRUNCATE, 'D'),
                (USAGE, 'U'),
                (CREATE, 'C'),
            ]
            .iter()
            .filter(|(bit, _)| p & bit != 0)
            .map(|(_, c)| *c)
            .collect()
        };
        let mut items = vec![format!("{}={}/{}", self.owner, letters(all), self.owner)];
        for (grantee, privileges) in &self.grants {
            let who = if grantee == PUBLIC { "" } else { grantee };
            items.push(format!("{who}={}/{}", letters(*privileges), self.owner));
        }
        format!("{{{}}}", items.join(","))
    }
}

/// The privileges named in `names` (upper case), for error messages.
pub fn privilege_names(privileges: Privileges) -> Vec<&'static str> {
    PRIVILEGE_NAMES
        .iter()
        .filter(|(_, bit)| privileges & bit != 0)
        .map(|(name, _)| *name)
        .collect()
}

/// SCRAM iteration count for new verifiers (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// A parsed SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramVerifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> ScramVerifier {
        let salt: [u8; 16] = random_bytes();
        ScramVerifier::with_salt(password, &salt, SCRAM_ITERATIONS)
    }

    pub fn with_salt(password: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
        // SASLprep, falling back to the raw bytes as PostgreSQL does.
        let prepared = stringprep::saslprep(password)
            .map(|p| p.into_owned())
            .unwrap_or_else(|_| password.to_string());
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations.max(1)).expect("non-zero"),
            salt,
            prepared.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key)
            .as_ref()
            .to_vec();
        let server_key = hmac_sha256(&salted, b"Server Key");
        ScramVerifier {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// Parses PostgreSQL's text form; None when `text` is not a verifier.
    pub fn parse(text: &str) -> Option<ScramVerifier> {
        let rest = text.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let verifier = ScramVerifier {
            iterations: iterations.parse().ok().filter(|i| *i > 0)?,
            salt: BASE64.decode(salt).ok()?,
            stored_key: BASE64.decode(stored).ok()?,
            server_key: BASE64.decode(server).ok()?,
        };
        (verifier.stored_key.len() == 32 && verifier.server_key.len() == 32).then_some(verifier)
    }

    pub fn to_text(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key)
        )
    }

    /// Checks a client proof for `auth_message`; on success returns the
    /// server signature that proves to the client we know the verifier.
    pub fn verify(&self, auth_message: &[u8], proof: &[u8]) -> Option<Vec<u8>> {
        if proof.len() != 32 {
            return None;
        }
        let signature = hmac_sha256(&self.stored_key, auth_message);
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let stored = digest::digest(&digest::SHA256, &client_key);
        // Constant time: compare every byte.
        let diff = stored
            .as_ref()
            .iter()
            .zip(&self.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then(|| hmac_sha256(&self.server_key, auth_message))
    }

    /// Whether `password` is the one this verifier was made from (for a
    /// front end whose login sends the password itself, over TLS or
    /// loopback: Flight SQL's HTTP Basic).
    pub fn matches_password(&self, password: &str) -> bool {
        let candidate = ScramVerifier::with_salt(password, &self.salt, self.iterations);
        let diff = candidate
            .stored_key
            .iter()
            .zip(&self.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0 && candidate.stored_key.len() == self.stored_key.len()
    }
}

/// Bytes from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// The verifier to store for a `PASSWORD '...'` clause: a verifier given
/// as such (psql's \password sends one) is kept; anything else is hashed.
pub fn password_verifier(password: &str) -> Result<String> {
    if password.starts_with("SCRAM-SHA-256$") {
        return match ScramVerifier::parse(password) {
            Some(v) => Ok(v.to_text()),
            None => Err(QuiverError::InvalidParameterValue(
                "the password looks like a SCRAM-SHA-256 verifier but is not a valid one".into(),
            )),
        };
    }
    if password.starts_with("md5") && password.len() == 35 {
        return Err(QuiverError::InvalidParameterValue(
            "MD5 password hashes are not accepted; give the password or a SCRAM-SHA-256 verifier"
                .into(),
        ));
    }
    if password.is_empty() {
        return Err(QuiverError::InvalidParameterValue(
            "empty password: use PASSWORD NULL to remove a password".into(),
        ));
    }
    Ok(ScramVerifier::new(password).to_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example: user "user", password "pencil".
    #[test]
    fn verifies_the_rfc_7677_exchange() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = ScramVerifier::with_salt("pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = BASE64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let signature = verifier.verify(auth_message.as_bytes(), &proof).unwrap();
        assert_eq!(
            BASE64.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut wrong = proof.clone();
        wrong[0] ^= 1;
        assert!(verifier.verify(auth_message.as_bytes(), &wrong).is_none());
    }

    #[test]
    fn verifier_text_round_trips() {
        let v = ScramVerifier::new("secret");
        assert_eq!(ScramVerifier::parse(&v.to_text()), Some(v.clone()));
        assert_eq!(password_verifier(&v.to_text()).unwrap(), v.to_text());
        assert!(ScramVerifier::parse("SCRAM-SHA-256$x").is_none());
        assert!(password_verifier("").is_err());
    }

    #[test]
    fn a_verifier_recognises_its_password_only() {
        let v = ScramVerifier::new("secret");
        assert!(v.matches_password("secret"));
        assert!(!v.matches_password("Secret"));
        assert!(!v.matches_password(""));
    }

    #[test]
    fn acl_owner_grants_and_public() {
        let mut acl = Acl::owned_by("alice");
        assert_eq!(acl.allowed("alice", TABLE_ALL), TABLE_ALL);
        assert_eq!(acl.allowed("bob", TABLE_ALL), 0);
        acl.grant("bob", SELECT | INSERT);
        acl.grant(PUBLIC, UPDATE);
        assert_eq!(acl.allowed("bob", TABLE_ALL), SELECT | INSERT | UPDATE);
        acl.revoke("bob", INSERT);
        assert_eq!(acl.allowed("bob", TABLE_ALL), SELECT | UPDATE);
        assert_eq!(
            acl.to_aclitems(TABLE_ALL),
            "{alice=arwdD/alice,bob=r/alice,=w/alice}"
        );
    }
}
