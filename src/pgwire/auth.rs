//! SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server side, against the
//! verifiers roles store: the messages of one exchange, parsed and checked.
//! A login name that is no role gets the same exchange with a salt derived
//! from a server secret, so a client cannot tell unknown users from wrong
//! passwords.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::engine::roles::{hmac_sha256, random_bytes, ScramVerifier, SCRAM_ITERATIONS};

pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Why an exchange failed.
#[derive(Debug, PartialEq)]
pub enum ScramError {
    /// The client broke the protocol (08P01).
    Protocol(String),
    /// Wrong password, unknown user, or a user without a password (28P01).
    Failed,
}

/// An exchange after the server-first message, waiting for client-final.
#[derive(Debug)]
pub struct ScramExchange {
    verifier: Option<ScramVerifier>,
    /// What client-final's `c=` must hold: the base64 GS2 header.
    channel_binding: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramExchange {
    /// Reads client-first and answers server-first. `verifier` is None
    /// when the login cannot succeed; the answer looks the same anyway.
    pub fn start(
        user: &str,
        verifier: Option<ScramVerifier>,
        mock_secret: &[u8],
        client_first: &[u8],
    ) -> Result<(ScramExchange, String), ScramError> {
        let text = std::str::from_utf8(client_first)
            .map_err(|_| protocol("client-first-message is not UTF-8"))?;
        let (flag, rest) = text
            .split_once(',')
            .ok_or_else(|| protocol("malformed client-first-message"))?;
        match flag {
            // The client supports channel binding but thinks we do not
            // (we offer only SCRAM-SHA-256), or does not support it.
            "n" | "y" => {}
            f if f.starts_with("p=") => {
                return Err(protocol(
                    "channel binding was requested, but SCRAM-SHA-256-PLUS was not offered",
                ))
            }
            _ => return Err(protocol("malformed GS2 header in client-first-message")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or_else(|| protocol("malformed client-first-message"))?;
        if !authzid.is_empty() {
            return Err(protocol("authorization identities are not supported"));
        }
        let mut attributes = bare.split(',');
        // PostgreSQL ignores the SCRAM user name (libpq sends it empty) and
        // uses the start-up packet's.
        match attributes.next() {
            Some(a) if a.starts_with("n=") => {}
            _ => return Err(protocol("client-first-message lacks the user attribute")),
        }
        let client_nonce = match attributes.next() {
            Some(a) if a.starts_with("r=") && a.len() > 2 => &a[2..],
            _ => return Err(protocol("client-first-message lacks the nonce")),
        };
        if !client_nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(protocol(
                "the client nonce has characters SCRAM does not allow",
            ));
        }
        let (salt, iterations) = match &verifier {
            Some(v) => (v.salt.clone(), v.iterations),
            None => {
                let mut mac = hmac_sha256(mock_secret, user.as_bytes());
                mac.truncate(16);
                (mac, SCRAM_ITERATIONS)
            }
        };
        let nonce = format!("{client_nonce}{}", BASE64.encode(random_bytes::<18>()));
        let server_first = format!("r={nonce},s={},i={iterations}", BASE64.encode(&salt));
        let exchange = ScramExchange {
            verifier,
            channel_binding: BASE64.encode(format!("{flag},,")),
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((exchange, server_first))
    }

    /// Reads client-final; on success answers server-final.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let text = std::str::from_utf8(client_final)
            .map_err(|_| protocol("client-final-message is not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| protocol("client-final-message lacks the proof"))?;
        let mut attributes = without_proof.split(',');
        match attributes.next() {
            Some(c) if c.strip_prefix("c=") == Some(self.channel_binding.as_str()) => {}
            Some(c) if c.starts_with("c=") => return Err(protocol("channel binding mismatch")),
            _ => return Err(protocol("client-final-message lacks the channel binding")),
        }
        match attributes.next() {
            Some(r) if r.strip_prefix("r=") == Some(self.nonce.as_str()) => {}
            _ => return Err(protocol("client-final-message has the wrong nonce")),
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| protocol("the client proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let verifier = self.verifier.as_ref().ok_or(ScramError::Failed)?;
        match verifier.verify(auth_message.as_bytes(), &proof) {
            Some(signature) => Ok(format!("v={}", BASE64.encode(signature))),
            None => Err(ScramError::Failed),
        }
    }
}

fn protocol(message: &str) -> ScramError {
    ScramError::Protocol(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::digest;

    /// A client computing its proof as libpq does.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        let attrs: Vec<&str> = server_first.split(',').collect();
        let nonce = &attrs[0][2..];
        let salt = BASE64.decode(&attrs[1][2..]).unwrap();
        let iterations: u32 = attrs[2][2..].parse().unwrap();
        let mut salted = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).unwrap(),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sha256(stored.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    #[test]
    fn right_password_logs_in_and_wrong_one_does_not() {
        let verifier = ScramVerifier::new("s3cret");
        let first = b"n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
        for (password, ok) in [("s3cret", true), ("wrong", false)] {
            let (exchange, server_first) =
                ScramExchange::start("alice", Some(verifier.clone()), b"k", first).unwrap();
            let last = client_final(password, "n=,r=fyko+d2lbbFgONRv9qkxdawL", &server_first);
            let outcome = exchange.finish(last.as_bytes());
            assert_eq!(outcome.is_ok(), ok, "{password}: {outcome:?}");
            if !ok {
                assert_eq!(outcome, Err(ScramError::Failed));
            }
        }
    }

    #[test]
    fn unknown_users_get_a_stable_plausible_salt() {
        let first = b"n,,n=,r=abc";
        let (_, a) = ScramExchange::start("ghost", None, b"k", first).unwrap();
        let (_, b) = ScramExchange::start("ghost", None, b"k", first).unwrap();
        let salt = |s: &str| s.split(',').nth(1).unwrap().to_string();
        assert_eq!(salt(&a), salt(&b));
        let (exchange, server_first) = ScramExchange::start("ghost", None, b"k", first).unwrap();
        let last = client_final("anything", "n=,r=abc", &server_first);
        assert_eq!(exchange.finish(last.as_bytes()), Err(ScramError::Failed));
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        for bad in [
            &b""[..],
            b"x,,n=,r=a",
            b"n,a=admin,n=,r=a",
            b"n,,r=a",
            b"n,,n=,",
            b"p=tls-server-end-point,,n=,r=a",
            b"\xff\xfe",
        ] {
            assert!(matches!(
                ScramExchange::start("u", None, b"k", bad),
                Err(ScramError::Protocol(_))
            ));
        }
        let (exchange, _) = ScramExchange::start("u", None, b"k", b"n,,n=,r=a").unwrap();
        for bad in [
            &b"c=biws,r=a"[..],
            b"c=eSws,r=zz,p=AA==",
            b"c=biws,r=a,p=%%%",
        ] {
            assert!(matches!(exchange.finish(bad), Err(ScramError::Protocol(_))));
        }
    }
}
