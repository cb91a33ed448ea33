//! Sealing source passwords with an AEAD (ChaCha20-Poly1305) under `CREDENTIALS_KEY`.
//!
//! A sealed password is bound to the sync it belongs to (the sync id is the associated data),
//! so a ciphertext copied into another job does not open.

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("CREDENTIALS_KEY must be 32 bytes encoded as base64 (e.g. `openssl rand -base64 32`)")]
    InvalidKey,
    #[error(
        "the stored credentials cannot be decrypted with the current CREDENTIALS_KEY \
         (was the key rotated after this sync was queued?)"
    )]
    Undecryptable,
}

/// The key that API and workers share.
#[derive(Clone)]
pub struct CredentialsKey(ChaCha20Poly1305);

impl std::fmt::Debug for CredentialsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialsKey(..)")
    }
}

impl CredentialsKey {
    pub fn from_base64(encoded: &SecretString) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(encoded.expose_secret().trim())
            .map_err(|_| CryptoError::InvalidKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidKey);
        }
        let cipher =
            ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(cipher))
    }

    /// A fresh random key, base64-encoded (what `scripts/dev` and tests use).
    pub fn generate_base64() -> String {
        let key: [u8; 32] = rand::random();
        STANDARD.encode(key)
    }

    /// Seals `secret` for the record `context` (nonce || ciphertext, base64).
    pub fn seal(&self, secret: &SecretString, context: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: secret.expose_secret().as_bytes(),
                    aad: context,
                },
            )
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, CryptoError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| CryptoError::Undecryptable)?;
        if bytes.len() < NONCE_LEN {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Undecryptable)?;
        let plain = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CredentialsKey {
        CredentialsKey::from_base64(&CredentialsKey::generate_base64().into()).unwrap()
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_context() {
        let k = key();
        let sealed = k.seal(&"hunter2".into(), b"sync-1");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            k.open(&sealed, b"sync-1").unwrap().expose_secret(),
            "hunter2"
        );
        assert!(k.open(&sealed, b"sync-2").is_err());
        assert!(key().open(&sealed, b"sync-1").is_err());
        assert!(k.open("not base64!", b"sync-1").is_err());
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        assert!(CredentialsKey::from_base64(&"c2hvcnQ=".into()).is_err());
        assert!(CredentialsKey::from_base64(&"%%%".into()).is_err());
    }
}
