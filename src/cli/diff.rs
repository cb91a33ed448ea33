//! `diff`: what differs between two syncs of one catalog or two catalogs, as a gate for CI:
//! the exit status says whether changes of the kind `--fail-on` names are present.

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use super::{Api, ApiClientConfig};

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub api: ApiClientConfig,
    /// The earlier state: a catalog id (as stored now) or a sync id (its catalog after it).
    pub from: String,
    /// The later state: another catalog, or a sync of the same catalog.
    pub to: String,
    /// Exit with status 1 when changes of this kind are present.
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,
    /// How to print the changes.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Changes that can break clients.
    Breaking,
    /// Any change.
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per change, then a summary.
    Text,
    /// The API's JSON array.
    Json,
    /// A Markdown table, for a pull request comment.
    Markdown,
}

/// `diff`: prints the changes from `from` to `to`. The exit status is 1 when a change of the
/// kind `--fail-on` names is present, 0 otherwise.
pub async fn diff(args: DiffArgs) -> anyhow::Result<bool> {
    let api = Api::new(&args.api)?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("from", &args.from)
        .append_pair("to", &args.to)
        .finish();
    let (_, body, _) = api
        .call(api.request(Method::GET, &format!("/diff?{query}")))
        .await?;
    let changes = body.as_array().cloned().unwrap_or_default();
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&body)?),
        Format::Text => print!("{}", text(&changes)),
        Format::Markdown => print!("{}", markdown(&changes)),
    }
    let failing = match args.fail_on {
        None => false,
        Some(FailOn::Any) => !changes.is_empty(),
        Some(FailOn::Breaking) => changes.iter().any(is_breaking),
    };
    Ok(!failing)
}

fn is_breaking(change: &Value) -> bool {
    change["classification"] == "breaking"
}

/// `schema.relation[.name]`.
fn path(change: &Value) -> String {
    let part = |k: &str| change[k].as_str().unwrap_or_default().to_owned();
    match change["name"].as_str() {
        Some(name) => format!("{}.{}.{name}", part("schema"), part("relation")),
        None => format!("{}.{}", part("schema"), part("relation")),
    }
}

/// What an altered object's attributes were and are: `nullable: true -> false; ...`.
fn details(change: &Value) -> String {
    let Some(after) = change["after"].as_object() else {
        return String::new();
    };
    if change["action"] != "altered" {
        return String::new();
    }
    after
        .iter()
        .map(|(k, v)| format!("{k}: {} -> {v}", change["before"][k]))
        .collect::<Vec<_>>()
        .join("; ")
}

fn summary(changes: &[Value]) -> String {
    let breaking = changes.iter().filter(|c| is_breaking(c)).count();
    format!(
        "{} changes: {breaking} breaking, {} non-breaking",
        changes.len(),
        changes.len() - breaking
    )
}

fn label(change: &Value) -> &'static str {
    match is_breaking(change) {
        true => "breaking",
        false => "non-breaking",
    }
}

fn text(changes: &[Value]) -> String {
    let mut out = String::new();
    for c in changes {
        let what = format!(
            "{} {}",
            c["object"].as_str().unwrap_or_default(),
            c["action"].as_str().unwrap_or_default()
        );
        let line = format!("{:<13} {what:<18} {} {}", label(c), path(c), details(c));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&summary(changes));
    out.push('\n');
    out
}

fn markdown(changes: &[Value]) -> String {
    let cell = |s: String| s.replace('|', "\\|");
    let mut out = format!("**{}**\n\n", summary(changes));
    if changes.is_empty() {
        return out;
    }
    out.push_str("| | change | object | details |\n|---|---|---|---|\n");
    for c in changes {
        out.push_str(&format!(
            "| {} | {} {} | `{}` | {} |\n",
            label(c),
            c["object"].as_str().unwrap_or_default(),
            c["action"].as_str().unwrap_or_default(),
            cell(path(c)),
            cell(details(c)),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes() -> Vec<Value> {
        vec![
            json!({"object": "column", "action": "altered", "schema": "shop", "relation": "orders",
                   "name": "total", "before": {"nullable": true}, "after": {"nullable": false},
                   "classification": "breaking"}),
            json!({"object": "index", "action": "added", "schema": "shop", "relation": "orders",
                   "name": "orders_total_idx", "before": null, "after": {"definition": "..."},
                   "classification": "non_breaking"}),
        ]
    }

    #[test]
    fn text_has_a_line_per_change_and_a_summary() {
        assert_eq!(
            text(&changes()),
            "breaking      column altered     shop.orders.total nullable: true -> false\n\
             non-breaking  index added        shop.orders.orders_total_idx\n\
             2 changes: 1 breaking, 1 non-breaking\n"
        );
    }

    #[test]
    fn markdown_is_a_table() {
        let out = markdown(&changes());
        assert!(out.starts_with("**2 changes: 1 breaking, 1 non-breaking**\n\n| |"));
        assert!(out.contains(
            "| breaking | column altered | `shop.orders.total` | nullable: true -> false |"
        ));
        assert_eq!(
            markdown(&[]),
            "**0 changes: 0 breaking, 0 non-breaking**\n\n"
        );
    }
}
