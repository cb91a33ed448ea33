//! The body of `POST /sync` (and of a schedule, which takes the same fields): each field
//! checked, the first wrong one named.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::extract::only_fields;
use crate::catalog::{DatabaseSelection, MAX_NAME_BYTES, SchemaFilter};
use crate::error::ApiError;
use crate::source::{
    MAX_CLIENT_CERT_BYTES, MAX_CLIENT_KEY_BYTES, MAX_ROOT_CERT_BYTES, PemContent, SourceSecrets,
    SourceTarget, SourceTls, check_pem,
};

/// The body of `POST /sync`: how to reach the source database. Unknown fields are refused.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the handler reads the body field by field, to name the one at fault
pub(super) struct SyncRequest {
    /// Hostname or IP address (checked against `SOURCE_ALLOWLIST`).
    #[schema(min_length = 1, max_length = 253)]
    host: String,
    #[schema(minimum = 1, maximum = 65535)]
    port: u16,
    #[schema(min_length = 1, max_length = 128)]
    user: String,
    /// Sealed at once; never stored in clear nor returned.
    #[schema(max_length = 1024)]
    password: Option<String>,
    /// The database to sync, or `*` for every database of the server (a whole-server sync;
    /// may be left out when `databases` is given).
    #[schema(min_length = 1, max_length = 1024)]
    dbname: String,
    /// `disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`.
    sslmode: Option<String>,
    /// PEM certificates of the CAs the server's certificate must chain to (a private CA, a
    /// cloud provider's bundle), with `sslmode` `verify-ca` or `verify-full`. Sealed like the
    /// password; never returned.
    #[schema(max_length = 262144)]
    sslrootcert: Option<String>,
    /// PEM client certificate (and its chain), with `sslkey` and a `sslmode` that uses TLS
    /// (`require`, `verify-ca`, `verify-full`). Sealed like the password; never returned.
    #[schema(max_length = 65536)]
    sslcert: Option<String>,
    /// PEM private key of `sslcert`. Sealed like the password; never returned.
    #[schema(max_length = 16384)]
    sslkey: Option<String>,
    /// Which schemas to read: `{"include": [...], "exclude": [...]}`; all user schemas by default.
    schemas: Option<SchemaFilter>,
    /// A whole-server sync's databases: `{"include": [...], "exclude": [...]}` (exact names);
    /// every connectable, non-template database the user may connect to by default. Only with
    /// `dbname` `*` or without `dbname`.
    databases: Option<DatabaseSelection>,
}

/// The `dbname` of a whole-server sync.
pub(super) const WHOLE_SERVER: &str = "*";

const FIELDS: [&str; 11] = [
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "schemas",
    "databases",
];
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Checks every field of a `POST /sync` body, naming the first one that is wrong.
pub(super) fn parse_sync_request(
    body: &Map<String, Value>,
) -> Result<(SourceTarget, SourceSecrets), ApiError> {
    only_fields(body, &FIELDS, "")?;
    let host = required_text(body, "host", 253)?;
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
    {
        return Err(ApiError::validation(
            "host",
            "must be a hostname or an IP address",
        ));
    }
    let port = match body.get("port") {
        None | Some(Value::Null) => return Err(ApiError::validation("port", "is required")),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| ApiError::validation("port", "must be an integer from 1 to 65535"))?
            as u16,
        Some(_) => {
            return Err(ApiError::validation(
                "port",
                "must be an integer from 1 to 65535",
            ));
        }
    };
    let user = required_text(body, "user", 128)?;
    let dbname = required_text(body, "dbname", 1024)?;
    let password = match body.get("password") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) if p.len() > 1024 => {
            return Err(ApiError::validation(
                "password",
                "must be at most 1024 bytes",
            ));
        }
        Some(Value::String(p)) if p.contains('\0') => {
            return Err(ApiError::validation(
                "password",
                "must not contain NUL bytes",
            ));
        }
        Some(Value::String(p)) => p.clone(),
        Some(_) => return Err(ApiError::validation("password", "must be a string")),
    };
    let sslmode = match body.get("sslmode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if SSL_MODES.contains(&m.as_str()) => Some(m.clone()),
        Some(_) => {
            return Err(ApiError::validation(
                "sslmode",
                format!("must be one of {}", SSL_MODES.join(", ")),
            ));
        }
    };
    let tls = parse_tls(body, sslmode.as_deref())?;
    Ok((
        SourceTarget {
            host: host.to_ascii_lowercase(),
            port,
            user,
            dbname,
            sslmode,
        },
        SourceSecrets {
            password: SecretString::from(password),
            tls,
        },
    ))
}

/// The optional `sslrootcert`, `sslcert` and `sslkey`: PEM text of what each names, the last
/// two together, and each only with an `sslmode` that uses it (sqlx ignores a root
/// certificate unless it verifies the server, and client certificates without TLS).
fn parse_tls(body: &Map<String, Value>, sslmode: Option<&str>) -> Result<SourceTls, ApiError> {
    let pem = |field: &str, content: PemContent, max: usize| match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.len() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} bytes"),
        )),
        Some(Value::String(text)) => check_pem(text, content)
            .map(|()| Some(SecretString::from(text.as_str())))
            .map_err(|reason| ApiError::validation(field, reason)),
        Some(_) => Err(ApiError::validation(field, "must be a string of PEM text")),
    };
    let tls = SourceTls {
        root_cert: pem("sslrootcert", PemContent::Certificates, MAX_ROOT_CERT_BYTES)?,
        client_cert: pem("sslcert", PemContent::Certificates, MAX_CLIENT_CERT_BYTES)?,
        client_key: pem("sslkey", PemContent::PrivateKey, MAX_CLIENT_KEY_BYTES)?,
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(_), None) => return Err(ApiError::validation("sslkey", "is required with sslcert")),
        (None, Some(_)) => return Err(ApiError::validation("sslcert", "is required with sslkey")),
        _ => {}
    }
    let verifies = matches!(sslmode, Some("verify-ca" | "verify-full"));
    if tls.root_cert.is_some() && !verifies {
        return Err(ApiError::validation(
            "sslrootcert",
            "is used only with sslmode verify-ca or verify-full",
        ));
    }
    if tls.client_cert.is_some() && !(verifies || sslmode == Some("require")) {
        return Err(ApiError::validation(
            "sslcert",
            "is used only with sslmode require, verify-ca or verify-full",
        ));
    }
    Ok(tls)
}

/// The optional `"schemas": {"include": [...], "exclude": [...]}` of a sync request.
pub(super) fn parse_schema_filter(value: Option<&Value>) -> Result<SchemaFilter, ApiError> {
    let object = match value {
        None | Some(Value::Null) => return Ok(SchemaFilter::default()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(ApiError::validation(
                "schemas",
                "must be an object with \"include\" and/or \"exclude\" lists",
            ));
        }
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, ApiError> {
        let field = format!("schemas.{key}");
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if items.len() <= 1000 => items
                .iter()
                .map(|item| match item {
                    Value::String(s)
                        if !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.contains('\0') =>
                    {
                        Ok(s.clone())
                    }
                    _ => Err(ApiError::validation(
                        &field,
                        "must hold schema names (non-empty strings)",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::validation(
                &field,
                "must be a list of at most 1000 schema names",
            )),
        }
    };
    if let Some(unknown) = object.keys().find(|k| *k != "include" && *k != "exclude") {
        return Err(ApiError::validation(
            format!("schemas.{unknown}"),
            "unknown field; expected include or exclude",
        ));
    }
    Ok(SchemaFilter {
        include: list("include")?,
        exclude: list("exclude")?.unwrap_or_default(),
    })
}

/// What a `POST /sync` body covers: one database, or the databases of a whole server. A
/// `databases` selection makes a whole-server sync, and then `dbname` is `*` or absent (it is
/// set to `*` in `body`); a `dbname` naming one database with `databases` is refused.
pub(super) fn parse_scope(
    body: &mut Map<String, Value>,
) -> Result<Option<DatabaseSelection>, ApiError> {
    let selection = body.get("databases").filter(|v| !v.is_null()).cloned();
    let whole = match body.get("dbname") {
        None | Some(Value::Null) if selection.is_some() => {
            body.insert("dbname".into(), WHOLE_SERVER.into());
            true
        }
        Some(Value::String(d)) if d.trim() == WHOLE_SERVER => true,
        _ if selection.is_some() => {
            return Err(ApiError::validation(
                "databases",
                "is for a whole-server sync: give dbname \"*\" or leave dbname out",
            ));
        }
        _ => false,
    };
    if !whole {
        return Ok(None);
    }
    let Some(selection) = selection else {
        return Ok(Some(DatabaseSelection::default()));
    };
    let Value::Object(object) = &selection else {
        return Err(ApiError::validation(
            "databases",
            "must be an object with \"include\" and/or \"exclude\" lists",
        ));
    };
    if let Some(unknown) = object.keys().find(|k| *k != "include" && *k != "exclude") {
        return Err(ApiError::validation(
            format!("databases.{unknown}"),
            "unknown field; expected include or exclude",
        ));
    }
    let list = |key: &str| -> Result<Option<Vec<String>>, ApiError> {
        let field = format!("databases.{key}");
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) if key == "include" && items.is_empty() => Err(
                ApiError::validation(&field, "must name at least one database"),
            ),
            Some(Value::Array(items)) if items.len() <= 1000 => items
                .iter()
                .map(|item| match item {
                    Value::String(s)
                        if !s.is_empty() && s.len() <= MAX_NAME_BYTES && !s.contains('\0') =>
                    {
                        Ok(s.clone())
                    }
                    _ => Err(ApiError::validation(
                        &field,
                        format!("must hold database names (non-empty strings of at most {MAX_NAME_BYTES} bytes)"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::validation(
                &field,
                "must be a list of at most 1000 database names",
            )),
        }
    };
    Ok(Some(DatabaseSelection {
        include: list("include")?,
        exclude: list("exclude")?.unwrap_or_default(),
    }))
}

/// A non-blank string field without NUL bytes, at most `max` bytes long.
fn required_text(body: &Map<String, Value>, field: &str, max: usize) -> Result<String, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ApiError::validation(field, "is required")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ApiError::validation(field, "must not be blank"))
        }
        Some(Value::String(s)) if s.len() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} bytes"),
        )),
        Some(Value::String(s)) if s.contains('\0') => {
            Err(ApiError::validation(field, "must not contain NUL bytes"))
        }
        Some(Value::String(s)) => Ok(s.trim().to_owned()),
        Some(_) => Err(ApiError::validation(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<(SourceTarget, SourceSecrets), ApiError> {
        parse_sync_request(v.as_object().unwrap())
    }

    fn field_of(v: Value) -> String {
        match parse(v) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {:?}", other.map(|t| t.0)),
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let ok = json!({"host":"DB.example","port":5432,"user":"u","password":"p","dbname":"d"});
        let (target, _) = parse(ok.clone()).unwrap();
        assert_eq!(target.host, "db.example");
        assert_eq!(target.port, 5432);

        let with = |k: &str, v: Value| {
            let mut o = ok.clone();
            o[k] = v;
            o
        };
        assert_eq!(field_of(with("host", json!("  "))), "host");
        assert_eq!(field_of(with("host", json!("a b"))), "host");
        assert_eq!(field_of(with("port", json!(0))), "port");
        assert_eq!(field_of(with("port", json!(65536))), "port");
        assert_eq!(field_of(with("port", json!("5432"))), "port");
        assert_eq!(field_of(with("port", json!(54.5))), "port");
        assert_eq!(field_of(with("user", json!(""))), "user");
        assert_eq!(field_of(with("dbname", json!(null))), "dbname");
        assert_eq!(field_of(with("password", json!(5))), "password");
        assert_eq!(field_of(with("sslmode", json!("sometimes"))), "sslmode");
        assert_eq!(field_of(with("extra", json!(1))), "extra");
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("host");
        assert_eq!(field_of(missing), "host");
    }

    fn scope_of(v: Value) -> Result<Option<DatabaseSelection>, ApiError> {
        let mut body = v.as_object().unwrap().clone();
        parse_scope(&mut body)
    }

    #[test]
    fn a_star_or_a_selection_makes_a_whole_server_sync() {
        let one = json!({"dbname": "app"});
        assert_eq!(scope_of(one).unwrap(), None);
        let all = json!({"dbname": "*"});
        assert_eq!(scope_of(all).unwrap(), Some(DatabaseSelection::default()));
        let mut implied = json!({"databases": {"include": ["a"], "exclude": ["b"]}});
        let selection = parse_scope(implied.as_object_mut().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(selection.include, Some(vec!["a".to_owned()]));
        assert_eq!(selection.exclude, vec!["b".to_owned()]);
        assert_eq!(implied["dbname"], "*");
        let field = |v: Value| match scope_of(v) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {:?}", other.ok()),
        };
        assert_eq!(
            field(json!({"dbname": "app", "databases": {}})),
            "databases"
        );
        assert_eq!(field(json!({"dbname": "*", "databases": []})), "databases");
        assert_eq!(
            field(json!({"dbname": "*", "databases": {"include": []}})),
            "databases.include"
        );
        assert_eq!(
            field(json!({"databases": {"exclude": [""]}})),
            "databases.exclude"
        );
        assert_eq!(
            field(json!({"databases": {"only": ["a"]}})),
            "databases.only"
        );
    }

    #[test]
    fn tls_material_is_pem_of_its_kind_with_a_mode_that_uses_it() {
        const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
        const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";
        let ok = json!({"host":"db","port":5432,"user":"u","dbname":"d","sslmode":"verify-full",
                        "sslrootcert":CERT,"sslcert":CERT,"sslkey":KEY});
        let (_, secrets) = parse(ok.clone()).unwrap();
        assert!(secrets.tls.root_cert.is_some() && secrets.tls.client_key.is_some());
        let with = |pairs: &[(&str, Value)]| {
            let mut o = ok.clone();
            for (k, v) in pairs {
                o[*k] = v.clone();
            }
            o
        };
        assert_eq!(
            field_of(with(&[("sslrootcert", json!("junk"))])),
            "sslrootcert"
        );
        assert_eq!(
            field_of(with(&[("sslrootcert", json!(KEY))])),
            "sslrootcert"
        );
        assert_eq!(field_of(with(&[("sslcert", json!(KEY))])), "sslcert");
        assert_eq!(field_of(with(&[("sslkey", json!(CERT))])), "sslkey");
        assert_eq!(field_of(with(&[("sslkey", json!(7))])), "sslkey");
        assert_eq!(field_of(with(&[("sslkey", Value::Null)])), "sslkey");
        assert_eq!(field_of(with(&[("sslcert", Value::Null)])), "sslcert");
        let big = format!("{CERT}{}", " ".repeat(MAX_ROOT_CERT_BYTES));
        assert_eq!(
            field_of(with(&[("sslrootcert", json!(big))])),
            "sslrootcert"
        );
        assert_eq!(
            field_of(with(&[("sslmode", json!("require"))])),
            "sslrootcert"
        );
        let client_only = with(&[("sslmode", json!("require")), ("sslrootcert", Value::Null)]);
        assert!(parse(client_only).is_ok());
        let plain = with(&[("sslmode", json!("prefer")), ("sslrootcert", Value::Null)]);
        assert_eq!(field_of(plain), "sslcert");
    }
}
