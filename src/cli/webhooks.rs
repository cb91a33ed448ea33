//! `webhooks listen`: a receiver for trying webhooks out. It verifies each request's Standard
//! Webhooks signature with the subscription's secret, answers 204 (401 when the signature does
//! not verify), and prints the verified events.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::{Args, Subcommand};
use secrecy::SecretString;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::events::SigningKey;

#[derive(Debug, Clone, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum WebhooksCommand {
    /// Receive webhooks on a local port and print the events whose signature verifies.
    Listen(ListenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// The port to listen on (any path is accepted).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The subscription's secret (`whsec_...`), as `POST /webhooks` answered it.
    #[arg(long, env = "PGCS_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Print each event's JSON body on one line instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many verified events.
    #[arg(long)]
    pub count: Option<u64>,
}

struct Listener {
    key: SigningKey,
    json: bool,
    count: Option<u64>,
    seen: AtomicU64,
    done: CancellationToken,
}

pub async fn webhooks(args: WebhooksArgs) -> anyhow::Result<bool> {
    match args.command {
        WebhooksCommand::Listen(args) => listen(args).await,
    }
}

async fn listen(args: ListenArgs) -> anyhow::Result<bool> {
    let key = SigningKey::parse(&SecretString::from(args.secret.clone())).context("--secret")?;
    let done = CancellationToken::new();
    let state = Arc::new(Listener {
        key,
        json: args.json,
        count: args.count,
        seen: AtomicU64::new(0),
        done: done.clone(),
    });
    let app = Router::new().fallback(receive).with_state(state);
    let addr = format!("{}:{}", args.bind, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    eprintln!("listening on http://{addr}/ for webhooks (Ctrl-C to stop)");
    let stop = done.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { done.cancelled().await })
        .await?;
    Ok(true)
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let id = header("webhook-id");
    let verified = listener.key.verify(
        id,
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    );
    if let Err(e) = verified {
        eprintln!("refused a request (webhook-id {id:?}): {e}");
        return StatusCode::UNAUTHORIZED;
    }
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let line = match listener.json {
        true => event.to_string(),
        false => summary(id, &event),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    let seen = listener.seen.fetch_add(1, Ordering::SeqCst) + 1;
    if listener.count.is_some_and(|n| seen >= n) {
        listener.done.cancel();
    }
    StatusCode::NO_CONTENT
}

/// One line per event, and one more per change of a `schema.changed`.
fn summary(id: &str, event: &Value) -> String {
    let data = &event["data"];
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let mut line = format!(
        "{} {} id={id} seq={}",
        text(&event["timestamp"]),
        text(&event["type"]),
        data["sequence"]
    );
    for key in ["catalog_id", "sync_id", "error"] {
        if let Some(v) = data[key].as_str() {
            line.push_str(&format!(" {key}={v}"));
        }
    }
    if let Some(changes) = data["changes"].as_array() {
        line.push_str(&format!(" changes={}", changes.len()));
        for c in changes {
            let name = match c["name"].as_str() {
                Some(n) => format!("{}.{}.{n}", text(&c["schema"]), text(&c["relation"])),
                None => format!("{}.{}", text(&c["schema"]), text(&c["relation"])),
            };
            let dependents = c["blast_radius"].as_array().map_or(0, Vec::len);
            line.push_str(&format!(
                "\n  {} {} {name} ({}, {dependents} dependents)",
                text(&c["action"]),
                text(&c["object"]),
                text(&c["classification"]),
            ));
        }
    }
    line
}
