//! Reading metadata from an external HTTP metadata service (`POST {url}/api/metadata`).

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::{SourceError, SourceLimits, SourceSecrets, SourceTarget};
use crate::catalog::Snapshot;

#[derive(Debug, Clone)]
pub struct HttpSource {
    client: reqwest::Client,
    endpoint: String,
    limits: SourceLimits,
}

/// The request body: the original service's connection payload (the TLS material only when
/// given: the service connects to the source itself).
#[derive(Serialize)]
struct MetadataRequest<'a> {
    host: &'a str,
    port: u16,
    user: &'a str,
    password: &'a str,
    dbname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslmode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslrootcert: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslcert: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sslkey: Option<&'a str>,
}

fn exposed(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(|s| s.expose_secret())
}

impl HttpSource {
    pub fn batch_relations(&self) -> usize {
        self.limits.batch_relations
    }

    pub fn new(base_url: &str, limits: SourceLimits) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let endpoint = format!("{}/api/metadata", base_url.trim_end_matches('/'));
        reqwest::Url::parse(&endpoint)?;
        Ok(Self {
            client,
            endpoint,
            limits,
        })
    }

    pub async fn fetch(
        &self,
        target: &SourceTarget,
        secrets: &SourceSecrets,
    ) -> Result<Snapshot, SourceError> {
        let tls = &secrets.tls;
        let body = MetadataRequest {
            host: &target.host,
            port: target.port,
            user: &target.user,
            password: secrets.password.expose_secret(),
            dbname: &target.dbname,
            sslmode: target.sslmode.as_deref(),
            sslrootcert: exposed(&tls.root_cert),
            sslcert: exposed(&tls.client_cert),
            sslkey: exposed(&tls.client_key),
        };
        let response = self
            .client
            .post(&self.endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|e| request_error("sending the request", e))?;

        let status = response.status();
        let bytes = self.read_bounded(response).await?;
        if !status.is_success() {
            let snippet: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            let message = format!("metadata service answered {status}: {}", snippet.trim());
            return Err(
                if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    SourceError::transient(message)
                } else {
                    SourceError::permanent(message)
                },
            );
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            SourceError::permanent(format!("malformed metadata from the metadata service: {e}"))
        })
    }

    /// Reads the body, refusing it as soon as it passes the size limit.
    async fn read_bounded(&self, response: reqwest::Response) -> Result<Vec<u8>, SourceError> {
        let limit = self.limits.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len as usize > limit)
        {
            return Err(too_large(limit));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| request_error("reading the response", e))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn too_large(limit: usize) -> SourceError {
    SourceError::permanent(format!("metadata service response exceeds {limit} bytes"))
}

fn request_error(what: &str, e: reqwest::Error) -> SourceError {
    // reqwest's error text names the URL but never the body, so it is safe to show.
    let permanent = e.is_decode() || e.is_builder();
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        e.without_url().to_string()
    };
    if permanent {
        SourceError::permanent(format!("metadata service: {what}: {detail}"))
    } else {
        SourceError::transient(format!("metadata service: {what}: {detail}"))
    }
}
