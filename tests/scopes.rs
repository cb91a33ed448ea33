//! Scoped tokens: each operation needs the scope the OpenAPI document states, tokens limited
//! to catalogs reach only those, every mutating request is in the audit log, and mutating
//! requests are rate limited.

mod common;

use common::*;
use pg_catalog_sync::api::rate_limit::RateSetting;
use pg_catalog_sync::store::catalogs::catalog_id_for;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TOKENS: &str =
    "reader:read:r-token,syncer:sync:s-token,ci:read+sync:c-token,ops:admin:a-token";

/// A request with a bearer token: the status, the JSON answer and the headers.
async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

/// The scope this service means each operation to need: reads need `read` (the audit log and
/// webhooks `admin`), deleting a catalog needs `admin`, every other change `sync`.
fn intended_scope(method: &str, path: &str) -> Option<&'static str> {
    match (method, path) {
        (_, "/health" | "/ready") => None,
        ("get", "/audit") => Some("admin"),
        (_, webhooks) if webhooks.starts_with("/webhooks") => Some("admin"),
        ("get", _) => Some("read"),
        ("delete", "/catalogs/{id}") => Some("admin"),
        _ => Some("sync"),
    }
}

#[tokio::test]
async fn each_operation_needs_the_scope_its_document_states() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(TOKENS.into()),
        ..AppOptions::default()
    })
    .await;
    let (_, doc, _) = call(&app, "r-token", Method::GET, "/openapi.json", None).await;
    let default = doc["security"][0]["bearer"].clone();
    let tokens = [
        ("read", "r-token"),
        ("sync", "s-token"),
        ("admin", "a-token"),
    ];
    let mut checked = 0;
    for (pattern, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let stated = match &operation["security"] {
                Value::Null => default[0].as_str(),
                security if security[0].as_object().unwrap().is_empty() => None,
                security => security[0]["bearer"][0].as_str(),
            };
            let intended = intended_scope(method, pattern);
            assert_eq!(stated, intended, "{method} {pattern}: the document's scope");
            let path = pattern
                .replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{delivery_id}", &uuid::Uuid::now_v7().to_string())
                .replace("{schema}", "public")
                .replace("{table}", "t");
            let method: Method = method.to_uppercase().parse().unwrap();
            for (held, token) in tokens {
                let allowed = match intended {
                    None => true,
                    Some(needed) => held == "admin" || held == needed,
                };
                let body = json!({});
                let (status, answer, _) =
                    call(&app, token, method.clone(), &path, Some(&body)).await;
                let what = format!("{method} {path} with a {held} token: {answer}");
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}");
                if allowed {
                    assert_ne!(status, StatusCode::FORBIDDEN, "{what}");
                } else {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(answer["error"]["code"], "missing_scope", "{what}");
                    assert_eq!(answer["error"]["scope"], intended.unwrap(), "{what}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 54 * 3, "every operation with every scope");
}

#[tokio::test]
async fn a_token_limited_to_catalogs_reaches_only_those() {
    let (mine, theirs) = (synthetic_body("1x1x1"), synthetic_body("1x1x2"));
    let id_of = |body: &Value| {
        catalog_id_for(
            body["host"].as_str().unwrap(),
            body["port"].as_u64().unwrap() as u16,
            body["dbname"].as_str().unwrap(),
        )
    };
    let (my_catalog, their_catalog) = (id_of(&mine), id_of(&theirs));
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(format!("{TOKENS},team:read+sync:t-token:{my_catalog}")),
        ..AppOptions::default()
    })
    .await;
    let (status, theirs_sync, _) =
        call(&app, "a-token", Method::POST, "/sync", Some(&theirs)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, mine_sync, _) = call(&app, "t-token", Method::POST, "/sync", Some(&mine)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{mine_sync}");
    assert_eq!(mine_sync["catalog_id"], my_catalog.to_string());

    let (status, refused, _) = call(&app, "t-token", Method::POST, "/sync", Some(&theirs)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "catalog_not_allowed");
    let their_sync = theirs_sync["sync_id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/catalogs/{their_catalog}")),
        (Method::GET, format!("/catalogs/{their_catalog}/tables")),
        (Method::GET, format!("/catalogs/{their_catalog}/erd")),
        (
            Method::GET,
            format!("/ui/catalogs/{their_catalog}/schemas/s0/diagram"),
        ),
        (Method::GET, format!("/catalogs/{their_catalog}/ddl")),
        (
            Method::DELETE,
            format!("/catalogs/{their_catalog}/schedule"),
        ),
        (Method::GET, format!("/syncs/{their_sync}")),
        (Method::GET, format!("/syncs/{their_sync}/changes")),
        (Method::DELETE, format!("/syncs/{their_sync}")),
        (Method::POST, format!("/syncs/{their_sync}/retry")),
        (
            Method::GET,
            format!("/diff?from={my_catalog}&to={their_catalog}"),
        ),
        (
            Method::GET,
            format!("/diff?from={their_sync}&to={their_sync}"),
        ),
    ] {
        let (status, answer, _) = call(&app, "t-token", method.clone(), &path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "catalog_not_allowed");
    }
    let my_sync = mine_sync["sync_id"].as_str().unwrap();
    let (status, _, _) = call(
        &app,
        "t-token",
        Method::GET,
        &format!("/syncs/{my_sync}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(
        &app,
        "t-token",
        Method::GET,
        &format!("/catalogs/{my_catalog}"),
        None,
    )
    .await;
    assert_ne!(status, StatusCode::FORBIDDEN);

    let listed = |list: &Value| -> Vec<String> { names(list, "id") };
    let (_, all, _) = call(&app, "a-token", Method::GET, "/catalogs", None).await;
    assert_eq!(listed(&all).len(), 2);
    let (_, limited, _) = call(&app, "t-token", Method::GET, "/catalogs", None).await;
    assert_eq!(listed(&limited), [my_catalog.to_string()]);
}

#[tokio::test]
async fn every_mutating_request_is_in_the_audit_log() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(TOKENS.into()),
        ..AppOptions::default()
    })
    .await;
    let body = synthetic_body("1x1x1");
    let (status, queued, created) = call(&app, "c-token", Method::POST, "/sync", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let catalog = queued["catalog_id"].as_str().unwrap().to_owned();
    let (status, _, refused) = call(
        &app,
        "r-token",
        Method::DELETE,
        &format!("/catalogs/{catalog}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, deleted) = call(
        &app,
        "a-token",
        Method::DELETE,
        &format!("/catalogs/{catalog}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Reads are not recorded.
    call(&app, "r-token", Method::GET, "/catalogs", None).await;

    let (status, denied, _) = call(&app, "c-token", Method::GET, "/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(denied["error"]["scope"], "admin");
    let (status, log, _) = call(&app, "a-token", Method::GET, "/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let entries: Vec<(String, String, String, u64, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["token"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
                e["request_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let request_id =
        |h: &reqwest::header::HeaderMap| h["x-request-id"].to_str().unwrap().to_owned();
    let target = format!("/catalogs/{catalog}");
    assert_eq!(
        entries,
        [
            (
                "ops".into(),
                "delete_catalog".into(),
                target.clone(),
                204,
                request_id(&deleted)
            ),
            (
                "reader".into(),
                "delete_catalog".into(),
                target.clone(),
                403,
                request_id(&refused)
            ),
            (
                "ci".into(),
                "create_sync".into(),
                target,
                202,
                request_id(&created)
            ),
        ],
        "newest first, refusals included"
    );
    let (_, only_ci, _) = call(&app, "a-token", Method::GET, "/audit?token=ci", None).await;
    assert_eq!(names(&only_ci, "action"), ["create_sync"]);
    let (_, page, headers) = call(&app, "a-token", Method::GET, "/audit?limit=2", None).await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert!(headers["link"].to_str().unwrap().contains("rel=\"next\""));
}

#[tokio::test]
async fn mutating_requests_over_the_rate_limit_are_refused_with_retry_after() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(TOKENS.into()),
        rate_limit: "2/m".parse::<RateSetting>().unwrap(),
        ..AppOptions::default()
    })
    .await;
    let body = synthetic_body("1x1x1");
    // A burst of twice the rate passes.
    for _ in 0..4 {
        let (status, _, _) = call(&app, "c-token", Method::POST, "/sync", Some(&body)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let (status, answer, headers) = call(&app, "c-token", Method::POST, "/sync", Some(&body)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer["error"]["code"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Reads are not limited, and another token has its own budget.
    let (status, _, _) = call(&app, "c-token", Method::GET, "/catalogs", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&app, "s-token", Method::POST, "/sync", Some(&body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, log, _) = call(&app, "a-token", Method::GET, "/audit?token=ci", None).await;
    let statuses: Vec<u64> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [429, 202, 202, 202, 202],
        "the refusal is on record too"
    );
}
