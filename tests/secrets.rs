//! The source password never reaches the store, the queue, or an API response; a job sealed
//! under another key fails with a clear message.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sqlx::PgPool;

/// Rows of every table in the store (public and apalis schemas) that contain `needle`, as text
/// or hex-encoded (bytea columns such as apalis's job payloads).
async fn hits(pool: &PgPool, needle: &str) -> Vec<String> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
         WHERE table_schema IN ('public', 'apalis') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() >= 8, "{tables:?}");
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    let mut found = Vec::new();
    for (schema, table) in tables {
        let sql = format!(
            "SELECT count(*) FROM \"{schema}\".\"{table}\" t WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
        );
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .bind(&hex)
            .fetch_one(pool)
            .await
            .unwrap();
        if n > 0 {
            found.push(format!("{schema}.{table}"));
        }
    }
    found
}

#[tokio::test]
async fn the_password_is_never_stored_or_returned() {
    let app = spawn_app().await;
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut body = sync_body("postgres");
    body["password"] = json!(password);

    let (_, accepted) = app.post_sync(&body).await;
    assert!(!accepted.to_string().contains(&password));
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM apalis.jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "the queued job is there to be searched");
    assert_eq!(hits(&app.pool, &password).await, Vec::<String>::new());

    let _worker = app.start_worker(worker_config(&app)).await;
    let sync = app
        .wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    assert_eq!(hits(&app.pool, &password).await, Vec::<String>::new());

    let catalog = accepted["catalog_id"].as_str().unwrap();
    for path in [
        format!("/syncs/{}", accepted["sync_id"].as_str().unwrap()),
        format!("/catalogs/{catalog}"),
        format!("/catalogs/{catalog}/syncs"),
        "/catalogs".to_owned(),
    ] {
        let text = app
            .client
            .get(app.url(&path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(&password), "{path} leaks the password");
        assert!(!text.contains("\"user\""), "{path} shows the user");
    }
}

#[tokio::test]
async fn a_job_sealed_under_another_key_fails_clearly() {
    let app = spawn_app().await;
    let (_, accepted) = app.post_sync(&synthetic_body("1x1x1")).await;
    let mut config = worker_config(&app);
    config.credentials.credentials_key =
        pg_catalog_sync::crypto::CredentialsKey::generate_base64().into();
    let _worker = app.start_worker(config).await;
    let sync = app
        .wait_for_sync(
            accepted["sync_id"].as_str().unwrap(),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(sync["status"], "failed");
    assert_eq!(sync["attempts"], 1);
    assert!(
        sync["last_error"]
            .as_str()
            .unwrap()
            .contains("CREDENTIALS_KEY"),
        "{sync}"
    );
}
