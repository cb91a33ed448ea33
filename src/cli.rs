//! The command-line client: `pg-catalog-sync sync | status | catalogs | tables | diff | ddl |
//! webhooks listen`, for people who live in a terminal and for CI. It talks to a running API
//! over HTTP, like any other client.

mod ddl;
mod diff;
mod progress;
mod webhooks;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use progress::{StatusLine, status_line};

pub use ddl::{DdlArgs, ddl};
pub use diff::{DiffArgs, FailOn, Format, diff};
pub use webhooks::{WebhooksArgs, webhooks};

/// Where the API is, and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct ApiClientConfig {
    /// Base URL of the pg-catalog-sync API.
    #[arg(
        long = "api",
        env = "PGCS_API_URL",
        default_value = "http://localhost:8080"
    )]
    pub api_url: String,

    /// Bearer token, when the API requires one (`API_TOKENS`).
    #[arg(long, env = "PGCS_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
    /// The source database's host.
    #[arg(long)]
    pub host: String,
    #[arg(long, default_value_t = 5432)]
    pub port: u16,
    /// The role to connect as.
    #[arg(long)]
    pub user: String,
    /// The database whose catalog to sync.
    #[arg(long)]
    pub dbname: String,
    /// The password is read from `PGPASSWORD`, never from the command line (where other
    /// users of the machine could see it).
    #[arg(long, env = "PGPASSWORD", hide_env_values = true, hide = true)]
    pub password: Option<String>,
    /// disable, allow, prefer, require, verify-ca or verify-full.
    #[arg(long)]
    pub sslmode: Option<String>,
    /// A PEM file of the CAs the server's certificate must chain to (verify-ca, verify-full).
    #[arg(long, value_name = "FILE")]
    pub sslrootcert: Option<std::path::PathBuf>,
    /// A PEM file with the client certificate (with `--sslkey`).
    #[arg(long, value_name = "FILE")]
    pub sslcert: Option<std::path::PathBuf>,
    /// A PEM file with the client certificate's private key.
    #[arg(long, value_name = "FILE")]
    pub sslkey: Option<std::path::PathBuf>,
    /// Only these schemas (repeatable).
    #[arg(long = "schema")]
    pub schemas: Vec<String>,
    /// Wait for the sync to end, showing its progress; the exit status tells how it ended.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
    pub sync_id: String,
    /// Print the API's JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CatalogsArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
}

#[derive(Debug, Clone, Args)]
pub struct TablesArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
    pub catalog_id: String,
    /// Only this schema.
    #[arg(long)]
    pub schema: Option<String>,
    /// Only names containing this (case-insensitive).
    #[arg(long)]
    pub q: Option<String>,
}

/// The error of a refused request, from the API's error body.
fn refused(status: StatusCode, body: &Value) -> anyhow::Error {
    let message = body["error"]["message"].as_str().unwrap_or("no details");
    match body["error"]["field"].as_str() {
        Some(field) => {
            anyhow::anyhow!("the API refused the request ({status}): {field}: {message}")
        }
        None => anyhow::anyhow!("the API refused the request ({status}): {message}"),
    }
}

/// A client of one API.
struct Api {
    client: Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(config: &ApiClientConfig) -> anyhow::Result<Self> {
        let client = Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: config.api_url.trim_end_matches('/').to_owned(),
            token: config.token.clone(),
        })
    }

    fn request(&self, method: Method, path_or_url: &str) -> RequestBuilder {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends the request; the JSON body of a success, or the API's error message.
    async fn call(
        &self,
        request: RequestBuilder,
    ) -> anyhow::Result<(StatusCode, Value, Option<String>)> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {}", self.base))?;
        let status = response.status();
        let next = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split('>').next())
            .map(|path| format!("{}{path}", self.base));
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            return Err(refused(status, &body));
        }
        Ok((status, body, next))
    }

    /// Sends the request; the text body of a success, or the API's error message.
    async fn call_text(&self, request: RequestBuilder) -> anyhow::Result<String> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {}", self.base))?;
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return Err(refused(status, &body));
        }
        response.text().await.context("reading the API's answer")
    }

    /// Every item of a paged list.
    async fn all_pages(&self, first: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut next = Some(first.to_owned());
        while let Some(url) = next {
            let (_, page, link) = self.call(self.request(Method::GET, &url)).await?;
            items.extend(page.as_array().cloned().unwrap_or_default());
            next = link;
        }
        Ok(items)
    }
}

/// `sync`: enqueues a sync; with `--wait`, follows it to its end. The exit status is 0 when it
/// succeeded (or was queued, without `--wait`), 1 otherwise.
pub async fn sync(args: SyncArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let mut body = json!({
        "host": args.host, "port": args.port, "user": args.user, "dbname": args.dbname,
        "password": args.password.unwrap_or_default(),
    });
    if let Some(mode) = args.sslmode {
        body["sslmode"] = json!(mode);
    }
    // The files' text goes in the body; the API checks it, and seals it like the password.
    for (field, file) in [
        ("sslrootcert", &args.sslrootcert),
        ("sslcert", &args.sslcert),
        ("sslkey", &args.sslkey),
    ] {
        if let Some(file) = file {
            let pem = std::fs::read_to_string(file)
                .with_context(|| format!("reading --{field} {}", file.display()))?;
            body[field] = json!(pem);
        }
    }
    if !args.schemas.is_empty() {
        body["schemas"] = json!({ "include": args.schemas });
    }
    let (_, accepted, _) = api
        .call(api.request(Method::POST, "/sync").json(&body))
        .await?;
    let sync_id = accepted["sync_id"].as_str().unwrap_or_default().to_owned();
    // A whole-server sync (`--dbname '*'`) has no catalog of its own.
    println!(
        "catalog {}",
        accepted["catalog_id"]
            .as_str()
            .unwrap_or("- (whole server)")
    );
    println!(
        "sync    {sync_id} ({})",
        accepted["status"].as_str().unwrap_or_default()
    );
    if !args.wait {
        return Ok(true);
    }
    let sync = follow(&api, &sync_id).await?;
    print_sync(&sync);
    Ok(sync["status"] == "succeeded" && all_databases_succeeded(&sync))
}

/// Whether every database of a whole-server sync succeeded (true for a catalog's sync).
fn all_databases_succeeded(sync: &Value) -> bool {
    let summary = &sync["summary"];
    summary.is_null() || summary["databases"] == summary["succeeded"]
}

/// Long-polls the sync until it ends, showing its status as it goes: one line that updates in
/// place on a terminal (with a running sync's progress bar), one line per change otherwise
/// (for a running sync, when its phase changes or another tenth of it is done).
async fn follow(api: &Api, sync_id: &str) -> anyhow::Result<Value> {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let spinner = ['|', '/', '-', '\\'];
    let mut last_shown = String::new();
    let mut turn = 0;
    loop {
        turn += 1;
        let path = format!("/syncs/{sync_id}?wait=1s");
        let (_, sync, _) = api.call(api.request(Method::GET, &path)).await?;
        let status = sync["status"].as_str().unwrap_or("unknown");
        let StatusLine { line, milestone } = status_line(&sync);
        let done = matches!(status, "succeeded" | "failed" | "cancelled");
        let mut err = std::io::stderr();
        if terminal {
            let elapsed = started.elapsed().as_secs_f64();
            let mark = if done {
                ' '
            } else {
                spinner[turn % spinner.len()]
            };
            let _ = write!(err, "\r\x1b[2K{mark} {line}  {elapsed:.1}s");
            if done {
                let _ = writeln!(err);
            }
        } else if milestone != last_shown {
            let _ = writeln!(err, "{line}");
        }
        last_shown = milestone;
        if done {
            return Ok(sync);
        }
    }
}

fn print_sync(sync: &Value) {
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "-".into());
    println!("status  {}", text(&sync["status"]));
    println!(
        "attempts {} of {}",
        sync["attempts"].as_i64().unwrap_or(0),
        sync["max_attempts"].as_i64().unwrap_or(0)
    );
    if let Some(error) = sync["last_error"].as_str() {
        println!("error   {error}");
    }
    if let Some(children) = sync["children"].as_array() {
        for child in children {
            let error = child["last_error"]
                .as_str()
                .map(|e| format!("  {e}"))
                .unwrap_or_default();
            println!(
                "database {}  {}  {}{error}",
                text(&child["dbname"]),
                text(&child["status"]),
                text(&child["catalog_id"]),
            );
        }
        return;
    }
    let stats = &sync["stats"];
    if stats.is_object() {
        let n = |k: &str| stats[k].as_u64().unwrap_or(0);
        println!(
            "read    {} schemas, {} tables, {} columns, {} constraints, {} indexes{}",
            n("schemas"),
            n("tables"),
            n("columns"),
            n("constraints"),
            n("indexes"),
            if stats["unchanged"] == true {
                " (unchanged)"
            } else {
                ""
            }
        );
        if let Some(changes) = stats["changes"].as_u64() {
            println!("changes {changes}");
        }
    }
}

/// `status`: one sync. Exit status 0 unless it failed or was cancelled.
pub async fn status(args: StatusArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let path = format!("/syncs/{}", urlencode(&args.sync_id));
    let (_, sync, _) = api.call(api.request(Method::GET, &path)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sync)?);
    } else {
        println!("sync    {}", args.sync_id);
        println!(
            "catalog {}",
            sync["catalog_id"].as_str().unwrap_or_default()
        );
        print_sync(&sync);
    }
    Ok(!matches!(
        sync["status"].as_str(),
        Some("failed" | "cancelled")
    ))
}

/// `catalogs`: every catalog with its latest status.
pub async fn catalogs(args: CatalogsArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let rows: Vec<Vec<String>> = api
        .all_pages("/catalogs?limit=1000")
        .await?
        .iter()
        .map(|c| {
            vec![
                cell(&c["id"]),
                cell(&c["source"]),
                cell(&c["status"]),
                cell(&c["synced_at"]),
            ]
        })
        .collect();
    print_table(&["ID", "SOURCE", "STATUS", "SYNCED AT"], &rows);
    Ok(true)
}

/// `tables`: a catalog's relations, with their kind, column count and row estimate.
pub async fn tables(args: TablesArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", "1000");
    if let Some(schema) = &args.schema {
        query.append_pair("schema", schema);
    }
    if let Some(q) = &args.q {
        query.append_pair("q", q);
    }
    let path = format!(
        "/catalogs/{}/tables?{}",
        urlencode(&args.catalog_id),
        query.finish()
    );
    let rows: Vec<Vec<String>> = api
        .all_pages(&path)
        .await?
        .iter()
        .map(|t| {
            vec![
                cell(&t["schema"]),
                cell(&t["name"]),
                cell(&t["kind"]),
                cell(&t["column_count"]),
                cell(&t["row_estimate"]),
            ]
        })
        .collect();
    print_table(&["SCHEMA", "NAME", "KIND", "COLUMNS", "ROWS (EST.)"], &rows);
    Ok(true)
}

fn urlencode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns as wide as their widest cell.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
