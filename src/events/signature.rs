//! Standard Webhooks signatures (standardwebhooks.com): a secret `whsec_<base64>`, and a
//! signature `v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">` keyed with the
//! secret's decoded bytes, so that receivers can verify with the specification's libraries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a signed timestamp may be from the verifier's clock (the specification's default).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a secret or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a secret is `whsec_` followed by 24 to 64 bytes in base64")]
    InvalidSecret,
    #[error("the `webhook-timestamp` header is missing or not a number of seconds")]
    InvalidTimestamp,
    #[error("the timestamp is more than 5 minutes away from now")]
    StaleTimestamp,
    #[error("no `v1` signature of the `webhook-signature` header matches")]
    Mismatch,
}

/// A signing secret: its decoded key bytes.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh secret of 32 random bytes, as `whsec_<base64>`.
    pub fn generate() -> SecretString {
        let bytes: [u8; 32] = rand::random();
        SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// The key of a `whsec_...` secret.
    pub fn parse(secret: &SecretString) -> Result<Self, SignatureError> {
        let encoded = secret
            .expose_secret()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SignatureError::InvalidSecret)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| SignatureError::InvalidSecret)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SignatureError::InvalidSecret);
        }
        Ok(Self(bytes))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header's value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks a message as a receiver does: the timestamp within [`TOLERANCE_SECS`] of `now`,
    /// and one of the header's space-separated `v1,` signatures matching (in constant time).
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::InvalidTimestamp)?;
        if (now - timestamp).abs() > TOLERANCE_SECS {
            return Err(SignatureError::StaleTimestamp);
        }
        let matches = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| STANDARD.decode(s).ok())
            .any(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok());
        matches.then_some(()).ok_or(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries (their test suites).
    #[test]
    fn signs_as_the_reference_libraries_do() {
        let key = SigningKey::parse(&SecretString::from(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ))
        .unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        key.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            &format!("v1,bm9wZQ== {signature}"),
            body,
            1614265330 + 10,
        )
        .unwrap();
    }

    #[test]
    fn refuses_what_a_receiver_must_refuse() {
        let secret = SigningKey::generate();
        assert!(secret.expose_secret().starts_with(SECRET_PREFIX));
        let key = SigningKey::parse(&secret).unwrap();
        let signature = key.sign("evt", 1_000, b"{}");
        let verify = |ts: &str, sig: &str, body: &[u8], now| key.verify("evt", ts, sig, body, now);
        assert_eq!(verify("1000", &signature, b"{}", 1_000), Ok(()));
        assert_eq!(
            verify("1000", &signature, b"{ }", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("1000", &signature, b"{}", 1_000 + TOLERANCE_SECS + 1),
            Err(SignatureError::StaleTimestamp)
        );
        assert_eq!(
            verify("soon", &signature, b"{}", 1_000),
            Err(SignatureError::InvalidTimestamp)
        );
        for bad in ["secret", "whsec_!!", "whsec_c2hvcnQ="] {
            assert_eq!(
                SigningKey::parse(&SecretString::from(bad.to_owned())).map(|_| ()),
                Err(SignatureError::InvalidSecret),
                "{bad}"
            );
        }
    }
}
