//! Delivering webhook events: one attempt per job of the webhook queue.
//!
//! An attempt POSTs the event, signed (Standard Webhooks), to the subscription's URL, after
//! the same allow-list checks as a source's host (the address is checked after resolution,
//! and the checked address is the one connected to). A 2xx ends the delivery; 410 Gone ends
//! it and disables the subscription; anything else (another status, a timeout, a refused or
//! failed connection) is retried by a new job after an exponential backoff with jitter, until
//! the delivery is older than the maximum age or the subscription has failed too many
//! attempts in a row (then it is disabled). Delivery is at least once: a worker that dies
//! mid-attempt leaves its job to be run again, and the receiver sees the same `webhook-id`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use sqlx::PgPool;
use tracing::{info, warn};

use super::RetryPolicy;
use crate::access::SourcePolicy;
use crate::crypto::CredentialsKey;
use crate::events::{self, SigningKey};
use crate::store::deliveries::{self, Attempt, DeliveryJob, Next, Sending};
use crate::store::webhooks;

/// How deliveries are retried and bounded (`WEBHOOK_*` settings).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry: RetryPolicy,
    /// A delivery whose next attempt would come later than this after its event fails.
    pub max_age: Duration,
    /// The whole request, connection included.
    pub timeout: Duration,
    /// Failed attempts in a row after which a subscription is disabled.
    pub disable_after: i32,
}

/// Everything a worker needs to deliver events.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub pool: PgPool,
    pub key: CredentialsKey,
    client: reqwest::Client,
    policy: Arc<SourcePolicy>,
    settings: DeliverySettings,
    /// The webhook queue, where retries go.
    queue: Arc<str>,
}

/// How one attempt ended.
enum Outcome {
    Delivered(u16),
    /// 410 Gone: the receiver wants no more events.
    Gone,
    /// Worth another attempt: the status code if the receiver answered, and why.
    Failed(Option<u16>, String),
}

impl Deliverer {
    pub fn new(
        pool: PgPool,
        key: CredentialsKey,
        policy: SourcePolicy,
        settings: DeliverySettings,
        queue: &str,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .build()?;
        Ok(Self {
            pool,
            key,
            client,
            policy,
            settings,
            queue: queue.into(),
        })
    }

    /// Makes the attempt `job` stands for and records it. A store error leaves the job to
    /// apalis (the attempt may then be made again: delivery is at least once).
    pub async fn deliver(&self, job: DeliveryJob) -> sqlx::Result<()> {
        let id = job.delivery_id;
        let Some(sending) = deliveries::for_sending(&self.pool, id).await? else {
            return Ok(()); // its subscription was deleted
        };
        let ended = matches!(sending.status.as_str(), "succeeded" | "failed");
        if ended || sending.attempts != job.after_attempts {
            return Ok(()); // a job run again after its attempt was recorded
        }
        if sending.disabled {
            let why = format!(
                "not sent: the subscription is disabled ({})",
                sending.disabled_reason.as_deref().unwrap_or("by request")
            );
            deliveries::abandon(&self.pool, id, &why).await?;
            metrics::counter!("pgcs_webhook_deliveries_total", "outcome" => "abandoned")
                .increment(1);
            return Ok(());
        }
        let started = Instant::now();
        let outcome = self.attempt(&sending).await;
        let elapsed = started.elapsed();
        metrics::histogram!("pgcs_webhook_delivery_duration_seconds").record(elapsed.as_secs_f64());
        let latency_ms = Some(elapsed.as_millis().min(i32::MAX as u128) as i32);
        let mut tx = self.pool.begin().await?;
        let (attempt, next) = match outcome {
            Outcome::Delivered(code) => {
                webhooks::record_success(&mut *tx, sending.webhook_id).await?;
                let attempt = Attempt {
                    status_code: Some(code),
                    latency_ms,
                    error: None,
                };
                (attempt, Next::Succeeded)
            }
            Outcome::Gone => {
                let reason = "the receiver answered 410 Gone";
                webhooks::disable(&mut *tx, sending.webhook_id, reason).await?;
                let attempt = Attempt {
                    status_code: Some(410),
                    latency_ms,
                    error: Some(reason.into()),
                };
                (attempt, Next::Failed)
            }
            Outcome::Failed(code, error) => {
                let disabled = webhooks::record_failure(
                    &mut *tx,
                    sending.webhook_id,
                    self.settings.disable_after,
                )
                .await?;
                let next = self.after_failure(&sending, disabled);
                let attempt = Attempt {
                    status_code: code,
                    latency_ms,
                    error: Some(error),
                };
                (attempt, next)
            }
        };
        deliveries::record_attempt(&mut tx, &self.queue, id, sending.attempts, &attempt, next)
            .await?;
        tx.commit().await?;
        let outcome = match next {
            Next::Succeeded => "succeeded",
            Next::RetryAt(_) => "retrying",
            Next::Failed => "failed",
        };
        metrics::counter!("pgcs_webhook_deliveries_total", "outcome" => outcome).increment(1);
        match next {
            Next::Succeeded => info!(delivery = %id, "webhook delivered"),
            _ => warn!(delivery = %id, ?next, error = ?attempt.error, "webhook delivery failed"),
        }
        Ok(())
    }

    /// What follows a failed attempt: another one after the backoff, unless the subscription
    /// is now disabled or the delivery would outlive its maximum age.
    fn after_failure(&self, sending: &Sending, disabled: bool) -> Next {
        if disabled {
            return Next::Failed;
        }
        let attempt = sending.attempts + 1;
        let delay = self.settings.retry.delay_after(attempt);
        let due = Utc::now() + delay;
        let age = (due - sending.created_at).to_std().unwrap_or_default();
        match age > self.settings.max_age {
            true => Next::Failed,
            false => Next::RetryAt(due),
        }
    }

    /// Sends the signed event once.
    async fn attempt(&self, sending: &Sending) -> Outcome {
        let url = match self.checked_url(&sending.url) {
            Ok(url) => url,
            Err(why) => return Outcome::Failed(None, why),
        };
        let key = match self
            .key
            .open(&sending.sealed_secret, sending.webhook_id.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|secret| SigningKey::parse(&secret).map_err(|e| e.to_string()))
        {
            Ok(key) => key,
            Err(why) => return Outcome::Failed(None, format!("the secret cannot be used: {why}")),
        };
        let body = events::body_for(&sending.payload, sending.sequence, sending.breaking_only);
        let id = sending.event_id.to_string();
        let timestamp = Utc::now().timestamp();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static("pg-catalog-sync-webhooks"),
        );
        let signature = key.sign(&id, timestamp, &body);
        for (name, value) in [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            headers.insert(
                name,
                HeaderValue::from_str(&value).expect("ASCII header value"),
            );
        }
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => match response.status().as_u16() {
                code @ 200..=299 => Outcome::Delivered(code),
                410 => Outcome::Gone,
                code => Outcome::Failed(Some(code), format!("the receiver answered {code}")),
            },
            // Receivers' URLs may hold secrets of their own: errors leave them out.
            Err(e) => Outcome::Failed(None, error_chain(&e.without_url())),
        }
    }

    /// The subscription's URL, if its scheme and host are allowed before any DNS look-up
    /// (names are checked again once resolved, by the client's resolver).
    fn checked_url(&self, raw: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(raw).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "the scheme {:?} is not http or https",
                url.scheme()
            ));
        }
        let host = url.host_str().ok_or("the URL has no host")?;
        self.policy.check_host(host)?;
        Ok(url)
    }
}

/// A request error with its causes (reqwest's own message rarely says what failed).
fn error_chain(e: &reqwest::Error) -> String {
    let mut message = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Resolves receivers' host names through the allow-list: every address a name resolves to
/// must be allowed, and those are the ones connected to.
struct GuardedResolver(Arc<SourcePolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addresses = policy.resolve(name.as_str(), 0).await?;
            let addresses: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addresses)
        })
    }
}
