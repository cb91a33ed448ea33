//! The web dashboard, end to end in a real browser: headless Chromium (Debian's `chromium`,
//! driven through `chromedriver` over WebDriver) opens `/ui`, navigates to a table and reads
//! what a person sees; a screenshot is saved under `target/test-artifacts/`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::*;
use common::*;
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::json;

const DDL: &str = r#"
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);
COMMENT ON TABLE shop.customers IS 'People who buy';
CREATE TABLE shop.orders (
    id          integer PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers (id),
    total       numeric(10,2) DEFAULT 0 CHECK (total >= 0)
);
CREATE INDEX orders_customer_idx ON shop.orders (customer_id);
"#;

#[tokio::test]
async fn a_person_browses_from_the_overview_to_a_tables_columns() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    source
        .execute("ALTER TABLE shop.orders ADD COLUMN note text; COMMENT ON COLUMN shop.orders.note IS 'free text'")
        .await;
    let second = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let (host, port) = server_host_port();
    let shown_source = format!("{host}:{port}/{}", source.name);

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&app.url("/ui")).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Overview · pg-catalog-sync");
    let catalogs = table_rows(&browser, "catalogs").await;
    assert_eq!(catalogs.len(), 1);
    assert_eq!(catalogs[0][0], shown_source);
    assert_eq!(catalogs[0][1], "succeeded");
    let succeeded = text_of(&browser, "#syncs-succeeded b").await;
    assert_eq!(succeeded, "2");
    assert_eq!(table_rows(&browser, "recent-syncs").await.len(), 2);

    // Overview -> catalog.
    click_link(&browser, &shown_source).await;
    let heading = text_of(&browser, "h1").await;
    assert_eq!(heading, shown_source);
    let tables: Vec<(String, String, String)> = table_rows(&browser, "tables")
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        tables,
        [
            ("shop".to_owned(), "customers".to_owned(), "2".to_owned()),
            ("shop".to_owned(), "orders".to_owned(), "4".to_owned()),
        ]
    );
    let changes = table_rows(&browser, "changes").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0][1], "column shop.orders.note");
    assert_eq!(changes[0][2], "added");

    // Catalog -> table.
    click_link(&browser, "orders").await;
    let heading = text_of(&browser, "h1").await;
    assert_eq!(heading, "shop.orders table");
    let columns: Vec<Vec<String>> = table_rows(&browser, "columns").await;
    let summary: Vec<(&str, &str, &str)> = columns
        .iter()
        .map(|c| (c[1].as_str(), c[2].as_str(), c[3].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("id", "integer", "NOT NULL"),
            ("customer_id", "bigint", "NOT NULL"),
            ("total", "numeric(10,2)", "yes"),
            ("note", "text", "yes"),
        ]
    );
    assert_eq!(columns[2][4], "0");
    assert_eq!(columns[3][5], "free text");
    let constraints = table_rows(&browser, "constraints").await;
    let kinds: Vec<&str> = constraints.iter().map(|c| c[1].as_str()).collect();
    assert!(
        kinds.contains(&"primary_key")
            && kinds.contains(&"foreign_key")
            && kinds.contains(&"check"),
        "{constraints:?}"
    );
    let indexes = table_rows(&browser, "indexes").await;
    assert!(
        indexes
            .iter()
            .any(|i| i[0] == "orders_customer_idx" && i[1] == "customer_id"),
        "{indexes:?}"
    );

    save_screenshot(&browser, "dashboard-table.png").await;

    // Back on the catalog page, a person pauses its schedule with the form's button.
    let catalog = first["catalog_id"].as_str().unwrap();
    let schedule = json!({"every": "1h", "user": "postgres", "password": "unused-under-trust"});
    let path = format!("/catalogs/{catalog}/schedule");
    let (status, _) = app.send(reqwest::Method::PUT, &path, Some(&schedule)).await;
    assert_eq!(status, StatusCode::OK);
    browser
        .goto(&app.url(&format!("/ui/catalogs/{catalog}")))
        .await
        .unwrap();
    assert!(
        text_of(&browser, "#schedule")
            .await
            .contains("Re-synced every 1h")
    );
    browser
        .find(Locator::XPath(
            "//form[contains(@action, '/schedule/pause')]/button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The form's answer sends the browser back to the page, which then shows the pause.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = match browser.find(Locator::Css("#schedule")).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown.contains("paused") || Instant::now() > deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        shown.contains("paused") && shown.contains("Resume"),
        "{shown}"
    );
    let (_, stored) = app.get(&path).await;
    assert_eq!(stored["paused"], true, "{stored}");
    save_screenshot(&browser, "dashboard-catalog.png").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn with_api_tokens_the_dashboard_signs_in_with_a_cookie() {
    let app = spawn_app_with(AppOptions {
        api_tokens: Some("ui-token-1,ui-token-2".into()),
        ..AppOptions::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let response = client.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/ui/login");
    let response = client.get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("<form"));

    let wrong = client
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["location"], "/ui/login?failed=1");
    assert!(wrong.headers().get("set-cookie").is_none());

    let right = client
        .post(app.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=ui-token-2")
        .send()
        .await
        .unwrap();
    assert_eq!(right.headers()["location"], "/ui");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let page = client
        .get(app.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Overview"));
    // The cookie also opens the API, as the bearer token would; a wrong one opens nothing.
    let api = client
        .get(app.url("/catalogs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    let api = client
        .get(app.url("/catalogs"))
        .header("cookie", "pgcs_token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

/// While a sync writes its snapshot, the catalog page shows how far it is, next to the latest
/// sync's status and in the sync's row: a progress bar with the phase and the relations written
/// of those to write. It is gone once the sync has ended.
#[tokio::test]
async fn the_catalog_page_shows_a_running_syncs_progress() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_src", DDL).await;
    let first = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let catalog = first["catalog_id"].as_str().unwrap().to_owned();
    let page_path = format!("/ui/catalogs/{catalog}");
    let page = || async {
        let response = app.client.get(app.url(&page_path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    assert!(!page().await.contains("<progress"), "no sync is running");

    // Both tables change: the next sync compares and writes 2 relations, held as it inserts
    // their details, before any relation counts as done.
    source
        .execute("ALTER TABLE shop.orders ADD COLUMN note text; ALTER TABLE shop.customers ADD COLUMN name text")
        .await;
    app.hold_writes().await;
    let (status, accepted) = app.post_sync(&sync_body(&source.name)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let sync_id = accepted["sync_id"].as_str().unwrap().to_owned();
    let held = json!({"phase": "comparing", "relations_done": 0, "relations_total": 2});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, sync) = app.get(&format!("/syncs/{sync_id}")).await;
        if sync["progress"] == held {
            break;
        }
        assert!(Instant::now() < deadline, "never held mid-write: {sync}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let html = page().await;
    let shown =
        r#"<progress value="0" max="2">0/2</progress><span class="phase">comparing 0/2</span>"#;
    let latest = html
        .split("Latest sync ")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .expect("the latest sync's status");
    assert!(
        latest.contains(r#"<span class="status running">running</span>"#) && latest.contains(shown),
        "{latest}"
    );
    let row = sync_row(&html, &sync_id);
    assert!(
        row.contains(r#"<span class="status running">running</span>"#) && row.contains(shown),
        "{row}"
    );
    let first_row = sync_row(&html, first["sync_id"].as_str().unwrap());
    assert!(!first_row.contains("<progress"), "{first_row}");

    app.release_writes().await;
    let second = app.wait_for_sync(&sync_id, Duration::from_secs(30)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["stats"]["relations_written"], 2, "{second}");
    let html = page().await;
    assert!(!html.contains("<progress"), "{html}");
    assert!(
        sync_row(&html, &sync_id).contains(r#"<span class="status succeeded">succeeded</span>"#)
    );
}

/// The row of the catalog page's syncs table that shows `sync_id`.
fn sync_row<'a>(html: &'a str, sync_id: &str) -> &'a str {
    let table = html
        .split(r#"<table id="syncs">"#)
        .nth(1)
        .expect("the syncs table");
    table
        .split("<tr>")
        .find(|row| row.contains(&format!("<code>{sync_id}</code>")))
        .and_then(|row| row.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for sync {sync_id}: {table}"))
}
