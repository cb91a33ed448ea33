//! What connecting to a source takes besides its [`SourceTarget`](super::SourceTarget): the
//! password and the TLS material (`sslrootcert`, `sslcert`, `sslkey`, as PEM text). None of it
//! is ever shown: every value is a [`SecretString`], whose `Debug` prints no content.

use rustls_pki_types::pem::{PemObject, SectionKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// The largest `sslrootcert`: room for a cloud provider's bundle of regional CAs.
pub const MAX_ROOT_CERT_BYTES: usize = 256 * 1024;
/// The largest `sslcert` (a certificate and its chain).
pub const MAX_CLIENT_CERT_BYTES: usize = 64 * 1024;
/// The largest `sslkey`.
pub const MAX_CLIENT_KEY_BYTES: usize = 16 * 1024;

/// The secrets of one source connection.
#[derive(Debug, Clone, Default)]
pub struct SourceSecrets {
    pub password: SecretString,
    pub tls: SourceTls,
}

/// PEM text for TLS with the source. The client certificate and key come together or not at
/// all (checked where they are accepted, [`check_pem`]).
#[derive(Debug, Clone, Default)]
pub struct SourceTls {
    /// The CAs the server's certificate must chain to (`sslrootcert`), instead of the public ones.
    pub root_cert: Option<SecretString>,
    /// The client certificate (`sslcert`).
    pub client_cert: Option<SecretString>,
    /// The client certificate's private key (`sslkey`).
    pub client_key: Option<SecretString>,
}

/// The fields of [`SourceTls`], as requests name them.
const FIELDS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

impl SourceTls {
    pub fn is_empty(&self) -> bool {
        self.root_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    fn slots(&self) -> [&Option<SecretString>; 3] {
        [&self.root_cert, &self.client_cert, &self.client_key]
    }

    /// The material as one text to seal: a JSON object keyed by the request's field names.
    pub fn to_sealable(&self) -> SecretString {
        let object: Map<String, Value> = FIELDS
            .iter()
            .zip(self.slots())
            .filter_map(|(name, slot)| {
                slot.as_ref()
                    .map(|pem| (name.to_string(), Value::from(pem.expose_secret())))
            })
            .collect();
        SecretString::from(Value::Object(object).to_string())
    }

    /// The material [`to_sealable`](Self::to_sealable) made; `None` when the text is not its.
    pub fn from_sealable(text: &SecretString) -> Option<Self> {
        let Value::Object(mut object) = serde_json::from_str(text.expose_secret()).ok()? else {
            return None;
        };
        let mut take = |name: &str| match object.remove(name) {
            None => Some(None),
            Some(Value::String(pem)) => Some(Some(SecretString::from(pem))),
            Some(_) => None,
        };
        Some(Self {
            root_cert: take(FIELDS[0])?,
            client_cert: take(FIELDS[1])?,
            client_key: take(FIELDS[2])?,
        })
    }
}

/// What a PEM field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemContent {
    /// One or more certificates, nothing else.
    Certificates,
    /// Exactly one private key (PKCS#8, PKCS#1 or SEC1), nothing else.
    PrivateKey,
}

/// Checks that `pem` holds what `content` says; the reason otherwise. The reason never quotes
/// the text (a key must not reach an error message, or a log through it).
pub fn check_pem(pem: &str, content: PemContent) -> Result<(), &'static str> {
    let mut sections = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        match section {
            Ok((kind, _)) => sections.push(kind),
            Err(_) => return Err("must be PEM text whose sections decode"),
        }
    }
    match content {
        PemContent::Certificates if sections.is_empty() => {
            Err("must be PEM text with a -----BEGIN CERTIFICATE----- section")
        }
        PemContent::Certificates if sections.iter().any(|k| *k != SectionKind::Certificate) => {
            Err("must hold certificates only (no keys or other sections)")
        }
        PemContent::PrivateKey => match sections.as_slice() {
            [SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey] => {
                Ok(())
            }
            [] => Err("must be PEM text with a -----BEGIN PRIVATE KEY----- section"),
            _ => Err("must hold exactly one private key and nothing else"),
        },
        PemContent::Certificates => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Syntactically valid PEM (the base64 decodes); the DER inside is not checked here.
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    #[test]
    fn pem_fields_hold_what_they_name() {
        use PemContent::*;
        assert_eq!(check_pem(CERT, Certificates), Ok(()));
        assert_eq!(check_pem(&format!("{CERT}{CERT}"), Certificates), Ok(()));
        assert!(check_pem("not pem", Certificates).is_err());
        assert!(check_pem(KEY, Certificates).is_err());
        assert!(check_pem(&format!("{CERT}{KEY}"), Certificates).is_err());
        assert!(
            check_pem(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                Certificates
            )
            .is_err()
        );
        assert_eq!(check_pem(KEY, PrivateKey), Ok(()));
        assert!(check_pem(CERT, PrivateKey).is_err());
        assert!(check_pem(&format!("{KEY}{KEY}"), PrivateKey).is_err());
        let reason = check_pem("-----BEGIN CERTIFICATE-----\nsecret", Certificates).unwrap_err();
        assert!(!reason.contains("secret"));
    }

    #[test]
    fn sealable_text_round_trips() {
        let tls = SourceTls {
            root_cert: Some(CERT.into()),
            client_cert: None,
            client_key: Some(KEY.into()),
        };
        let back = SourceTls::from_sealable(&tls.to_sealable()).unwrap();
        assert_eq!(back.root_cert.unwrap().expose_secret(), CERT);
        assert!(back.client_cert.is_none());
        assert_eq!(back.client_key.unwrap().expose_secret(), KEY);
        assert!(SourceTls::from_sealable(&"[]".into()).is_none());
        assert!(!format!("{tls:?}").contains("BEGIN"));
    }
}
