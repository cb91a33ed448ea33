//! Reading the bodies of `POST /webhooks` and `PATCH /webhooks/{id}`, field by field, so that
//! a bad field is named in the answer.

use secrecy::SecretString;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::access::{Caller, SourcePolicy};
use crate::error::ApiError;
use crate::events::{EventType, SigningKey};

/// The fields both bodies may hold.
pub const FIELDS: [&str; 7] = [
    "url",
    "secret",
    "catalogs",
    "events",
    "breaking_only",
    "description",
    "enabled",
];

const MAX_URL_BYTES: usize = 2048;
const MAX_CATALOGS: usize = 1000;
const MAX_DESCRIPTION_CHARS: usize = 256;

/// A subscription's settings, as a request leaves them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub catalogs: Option<Vec<Uuid>>,
    pub events: Vec<EventType>,
    pub breaking_only: bool,
    pub description: Option<String>,
}

/// The target URL: http or https, a host the allow-list admits (before DNS: names are checked
/// again at every delivery, once resolved), no credentials.
pub fn parse_url(value: &Value, policy: &SourcePolicy) -> Result<String, ApiError> {
    let field = |m: String| ApiError::validation("url", m);
    let raw = value
        .as_str()
        .ok_or_else(|| field("must be a string: the receiver's http or https URL".into()))?;
    if raw.len() > MAX_URL_BYTES {
        return Err(field(format!("longer than {MAX_URL_BYTES} bytes")));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| field(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(field(format!(
            "the scheme must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(field(
            "must not hold credentials: receivers verify the signature instead".into(),
        ));
    }
    let host = url.host_str().ok_or_else(|| field("has no host".into()))?;
    policy.check_host(host).map_err(field)?;
    Ok(url.to_string())
}

/// `"all"`, or a list of catalog ids within the caller's reach. A token limited to some
/// catalogs must list them.
pub fn parse_catalogs(value: &Value, caller: &Caller) -> Result<Option<Vec<Uuid>>, ApiError> {
    let field = |m: &str| ApiError::validation("catalogs", m);
    match value {
        Value::String(s) if s == "all" => match caller.catalogs() {
            None => Ok(None),
            Some(_) => Err(field(
                "this token is limited to some catalogs: list them instead of \"all\"",
            )),
        },
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_CATALOGS {
                return Err(field("must list 1 to 1000 catalog ids, or be \"all\""));
            }
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                let id = item
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| field("every item must be a catalog id (a UUID)"))?;
                if !caller.reaches(id.into()) {
                    return Err(ApiError::CatalogNotAllowed(id));
                }
                ids.push(id);
            }
            ids.sort();
            ids.dedup();
            Ok(Some(ids))
        }
        _ => Err(field("must be \"all\" or a list of catalog ids")),
    }
}

/// A non-empty list of the events a subscription may ask for.
pub fn parse_events(value: &Value) -> Result<Vec<EventType>, ApiError> {
    let names = EventType::SUBSCRIBABLE.map(EventType::as_str).join(", ");
    let field = || ApiError::validation("events", format!("must be a non-empty list of {names}"));
    let items = value
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(field)?;
    let mut events = Vec::new();
    for item in items {
        let event = item
            .as_str()
            .and_then(EventType::parse)
            .filter(|e| EventType::SUBSCRIBABLE.contains(e))
            .ok_or_else(field)?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

pub fn parse_bool(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::validation(name, "must be true or false")),
    }
}

pub fn parse_description(value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= MAX_DESCRIPTION_CHARS && !s.contains('\0') => {
            Ok(Some(s.clone()))
        }
        _ => Err(ApiError::validation(
            "description",
            format!("must be a string of at most {MAX_DESCRIPTION_CHARS} characters, or null"),
        )),
    }
}

/// The signing secret given, or a new one.
pub fn parse_secret(value: Option<&Value>) -> Result<SecretString, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(SigningKey::generate()),
        Some(Value::String(s)) => {
            let secret = SecretString::from(s.clone());
            SigningKey::parse(&secret)
                .map_err(|e| ApiError::validation("secret", e.to_string()))?;
            Ok(secret)
        }
        Some(_) => Err(ApiError::validation(
            "secret",
            "must be a string `whsec_<base64>`, or left out to have one made",
        )),
    }
}

/// The settings of `POST /webhooks`.
pub fn parse_new(
    body: &Map<String, Value>,
    policy: &SourcePolicy,
    caller: &Caller,
) -> Result<Settings, ApiError> {
    let required = |name: &str, what: &str| {
        body.get(name)
            .ok_or_else(|| ApiError::validation(name, format!("required: {what}")))
    };
    Ok(Settings {
        url: parse_url(required("url", "the receiver's URL")?, policy)?,
        catalogs: parse_catalogs(
            required("catalogs", "\"all\" or a list of catalog ids")?,
            caller,
        )?,
        events: parse_events(required("events", "the events to receive")?)?,
        breaking_only: parse_bool(body, "breaking_only")?.unwrap_or(false),
        description: body
            .get("description")
            .map(parse_description)
            .transpose()?
            .flatten(),
    })
}

/// `current` with what a `PATCH` body changes.
pub fn apply_patch(
    mut current: Settings,
    body: &Map<String, Value>,
    policy: &SourcePolicy,
    caller: &Caller,
) -> Result<Settings, ApiError> {
    if body.contains_key("secret") {
        return Err(ApiError::validation(
            "secret",
            "cannot be changed: create a new subscription to rotate it",
        ));
    }
    if let Some(url) = body.get("url") {
        current.url = parse_url(url, policy)?;
    }
    if let Some(catalogs) = body.get("catalogs") {
        current.catalogs = parse_catalogs(catalogs, caller)?;
    }
    if let Some(events) = body.get("events") {
        current.events = parse_events(events)?;
    }
    if let Some(b) = parse_bool(body, "breaking_only")? {
        current.breaking_only = b;
    }
    if let Some(description) = body.get("description") {
        current.description = parse_description(description)?;
    }
    Ok(current)
}
