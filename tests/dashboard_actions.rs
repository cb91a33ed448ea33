//! The dashboard's actions: forms that sync a catalog again, cancel or retry a sync, pause and
//! resume a schedule, shown to tokens with the `sync` scope, refused without the page's
//! token against cross-site request forgery, and written to the audit log.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKENS: &str = "reader:read:r-token,ci:read+sync:c-token,ops:admin:a-token";

struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(app: &TestApp, token: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            client,
            base: app.base.clone(),
            cookie: format!("pgcs_token={token}"),
        }
    }

    async fn page(&self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.text().await.unwrap()
    }

    /// Posts a form as a browser would: the status, where it sends the browser, and the body.
    async fn post(
        &self,
        action: &str,
        csrf: Option<&str>,
        site: &str,
    ) -> (StatusCode, String, String) {
        let body = csrf
            .map(|t| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("csrf", t)
                    .finish()
            })
            .unwrap_or_default();
        let response = self
            .client
            .post(format!("{}{action}", self.base))
            .header("cookie", &self.cookie)
            .header("sec-fetch-site", site)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }
}

/// The forms of a page: (action, csrf token, button label).
fn forms(html: &str) -> Vec<(String, String, String)> {
    let attribute = |tag: &str, name: &str| -> String {
        let start = tag.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        tag[start..][..tag[start..].find('"').unwrap()].to_owned()
    };
    html.split("<form ")
        .skip(1)
        .filter_map(|form| {
            let form = &form[..form.find("</form>")?];
            let action = attribute(form, "action");
            let csrf = form
                .split("<input ")
                .nth(1)
                .map(|input| attribute(input, "value"))?;
            let label = form
                .split("<button")
                .nth(1)?
                .split('>')
                .nth(1)?
                .split('<')
                .next()?
                .to_owned();
            Some((action, csrf, label))
        })
        .collect()
}

fn form<'a>(forms: &'a [(String, String, String)], label: &str) -> &'a (String, String, String) {
    forms
        .iter()
        .find(|f| f.2 == label)
        .unwrap_or_else(|| panic!("no {label} button: {forms:?}"))
}

#[tokio::test]
async fn a_sync_token_acts_from_the_dashboard_and_a_forged_form_is_refused() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some(TOKENS.into()),
        ..AppOptions::default()
    })
    .await;
    let source = TestDatabase::with_ddl("pgcs_src", "CREATE TABLE t (id int)").await;
    let api = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, app.url(path))
            .bearer_auth("a-token");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // A catalog with a schedule (which keeps the credentials a re-sync needs), and a sync
    // queued with no worker running.
    let (status, queued) = api(
        reqwest::Method::POST,
        "/sync",
        Some(sync_body(&source.name)),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let catalog = queued["catalog_id"].as_str().unwrap().to_owned();
    let first = queued["sync_id"].as_str().unwrap().to_owned();
    let schedule = json!({"every": "1h", "user": "postgres", "password": "unused-under-trust"});
    let path = format!("/catalogs/{catalog}/schedule");
    assert_eq!(
        api(reqwest::Method::PUT, &path, Some(schedule)).await.0,
        StatusCode::OK
    );
    let page = format!("/ui/catalogs/{catalog}");

    // A reader sees no action.
    let reader = Browser::new(&app, "r-token");
    assert!(forms(&reader.page(&page).await).is_empty());

    // The sync token cancels the queued sync; the page then offers to retry it.
    let ci = Browser::new(&app, "c-token");
    let shown = forms(&ci.page(&page).await);
    let labels: Vec<&str> = shown.iter().map(|f| f.2.as_str()).collect();
    assert_eq!(labels, ["Sync now", "Pause", "Cancel"]);
    let (action, csrf, _) = form(&shown, "Cancel");
    assert_eq!(action, &format!("/ui/syncs/{first}/cancel"));

    // Forged forms change nothing: no token, another caller's token, another site.
    let ops = Browser::new(&app, "a-token");
    let ops_csrf = form(&forms(&ops.page(&page).await), "Cancel").1.clone();
    for (who, token, site) in [
        (&ci, None, "same-origin"),
        (&ci, Some("forged"), "same-origin"),
        (&ci, Some(ops_csrf.as_str()), "same-origin"),
        (&ci, Some(csrf.as_str()), "cross-site"),
    ] {
        let (status, _, body) = who.post(action, token, site).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?} {site}: {body}");
        assert!(
            body.contains("did not come from a page of this dashboard"),
            "{body}"
        );
    }
    // A reader holding a sync token's form still lacks the scope.
    let (status, _, body) = reader.post(action, Some(csrf), "same-origin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("missing_scope"), "{body}");
    let (_, sync) = api(reqwest::Method::GET, &format!("/syncs/{first}"), None).await;
    assert_eq!(sync["status"], "queued", "nothing forged went through");

    let (status, location, _) = ci.post(action, Some(csrf), "same-origin").await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, page.as_str())
    );
    let (_, sync) = api(reqwest::Method::GET, &format!("/syncs/{first}"), None).await;
    assert_eq!(sync["status"], "cancelled");

    // Retry it: a new sync of the catalog.
    let shown = forms(&ci.page(&page).await);
    let (action, csrf, _) = form(&shown, "Retry");
    assert_eq!(
        ci.post(action, Some(csrf), "same-origin").await.0,
        StatusCode::SEE_OTHER
    );
    let (_, syncs) = api(
        reqwest::Method::GET,
        &format!("/catalogs/{catalog}/syncs"),
        None,
    )
    .await;
    assert_eq!(syncs.as_array().unwrap().len(), 2, "{syncs}");

    // Pause, then resume the schedule.
    let shown = forms(&ci.page(&page).await);
    let (action, csrf, _) = form(&shown, "Pause");
    assert_eq!(
        ci.post(action, Some(csrf), "same-origin").await.0,
        StatusCode::SEE_OTHER
    );
    let (_, schedule) = api(reqwest::Method::GET, &path, None).await;
    assert_eq!(schedule["paused"], true, "{schedule}");
    let shown = forms(&ci.page(&page).await);
    let (action, csrf, _) = form(&shown, "Resume");
    assert_eq!(
        ci.post(action, Some(csrf), "same-origin").await.0,
        StatusCode::SEE_OTHER
    );
    let (_, schedule) = api(reqwest::Method::GET, &path, None).await;
    assert_eq!(schedule["paused"], false, "{schedule}");

    // Sync now, run by a worker with the schedule's credentials.
    let worker = app.start_worker(worker_config(&app)).await;
    let (_, syncs) = api(
        reqwest::Method::GET,
        &format!("/catalogs/{catalog}/syncs"),
        None,
    )
    .await;
    let retried = syncs[0]["sync_id"].as_str().unwrap().to_owned();
    let wait = |id: String| api(reqwest::Method::GET, &format!("/syncs/{id}?wait=30s"), None);
    assert_eq!(wait(retried.clone()).await.1["status"], "succeeded");
    let shown = forms(&ci.page(&page).await);
    let (action, csrf, _) = form(&shown, "Sync now");
    assert_eq!(
        ci.post(action, Some(csrf), "same-origin").await.0,
        StatusCode::SEE_OTHER
    );
    let (_, syncs) = api(
        reqwest::Method::GET,
        &format!("/catalogs/{catalog}/syncs"),
        None,
    )
    .await;
    let now = syncs[0]["sync_id"].as_str().unwrap().to_owned();
    assert_ne!(now, retried);
    let (_, done) = wait(now).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    worker.shutdown.cancel();

    // Each action is on record, with the token that did it; the audit page shows them to ops.
    let (_, log) = api(reqwest::Method::GET, "/audit?token=ci", None).await;
    let actions: Vec<(String, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("ui_resync_catalog", 303),
        ("ui_resume_schedule", 303),
        ("ui_pause_schedule", 303),
        ("ui_retry_sync", 303),
        ("ui_cancel_sync", 303),
        ("ui_cancel_sync", 403),
        ("ui_cancel_sync", 403),
        ("ui_cancel_sync", 403),
        ("ui_cancel_sync", 403),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(a, s)| (a.to_string(), *s)).collect();
    assert_eq!(actions, expected);
    let audit = ops.page("/ui/audit").await;
    assert!(
        audit.contains("ui_pause_schedule") && audit.contains("ci"),
        "{audit}"
    );
    assert!(ops.page("/ui").await.contains("/ui/audit"));
    assert!(!ci.page("/ui").await.contains("/ui/audit"));
}
