//! The dashboard's entity-relationship diagrams in a real browser (headless Chromium, as in
//! tests/dashboard.rs): from a catalog to its schema's diagram, a box to its table, a table to
//! its neighbourhood; a generated schema of 100 tables drawn whole, and a bigger one offered
//! a table at a time. Screenshots go to `target/test-artifacts/diagram-*.png`.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::fmt::Write;

use browser::*;
use common::*;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;

const PAGILA: &str = include_str!("fixtures/pagila/pagila-schema.sql");

/// Schema `gen`: 100 tables `g0` ... `g99` of 3 to 7 columns, each after the first referencing
/// one or two earlier ones, so that the references form long chains and cross.
fn generated_schema() -> String {
    let mut ddl = String::from("CREATE SCHEMA gen;\n");
    for i in 0..100 {
        let _ = write!(
            ddl,
            "CREATE TABLE gen.g{i} (id bigint PRIMARY KEY, name text NOT NULL"
        );
        if i > 0 {
            let _ = write!(ddl, ", parent_id bigint REFERENCES gen.g{}", i / 3);
        }
        if i > 10 && i % 4 == 0 {
            let _ = write!(ddl, ", other_id bigint REFERENCES gen.g{}", i / 2 + 1);
        }
        for c in 0..i % 4 {
            let _ = write!(ddl, ", c{c} numeric(12,2)");
        }
        ddl.push_str(");\n");
    }
    ddl
}

/// The boxes of the diagram on the page, as `schema.table`; each is shown.
async fn boxes(browser: &Client) -> Vec<String> {
    let mut found = Vec::new();
    for element in browser
        .find_all(Locator::Css("#diagram svg g.erd-table"))
        .await
        .unwrap()
    {
        assert!(element.is_displayed().await.unwrap());
        found.push(element.attr("data-table").await.unwrap().unwrap());
    }
    found.sort();
    found
}

/// Makes the window as big as the diagram (within reason), so a screenshot shows all of it.
async fn fit_window(browser: &Client) {
    let svg = browser.find(Locator::Css("#diagram svg")).await.unwrap();
    let size = |name: &'static str| {
        let svg = svg.clone();
        async move {
            let value = svg.attr(name).await.unwrap().unwrap();
            value.parse::<f64>().unwrap() as u32
        }
    };
    let (width, height) = (size("width").await, size("height").await);
    browser
        .set_window_size(
            (width + 120).clamp(1280, 4800),
            (height * 100 / 80 + 300).clamp(1000, 6000),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_reads_a_schemas_diagram_and_follows_its_boxes() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_pagila", PAGILA).await;
    source.execute(&generated_schema()).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url(&format!("/ui/catalogs/{catalog}")))
        .await
        .unwrap();
    let diagrams = text_of(&browser, "#diagrams").await;
    assert_eq!(diagrams, "Diagrams: gen · public");
    click_link(&browser, "public").await;
    assert_eq!(text_of(&browser, "h1").await, "Schema public");
    assert!(
        text_of(&browser, "div.line").await.starts_with("22 tables"),
        "the count"
    );
    let shown = boxes(&browser).await;
    assert_eq!(shown.len(), 22, "{shown:?}");
    assert!(shown.contains(&"public.payment_p2022_07".to_owned()));
    let film = browser
        .find(Locator::Css("g.erd-table[data-table='public.film']"))
        .await
        .unwrap();
    let text = film.text().await.unwrap();
    for column in ["film_id", "title", "language_id", "smallint NOT NULL"] {
        assert!(text.contains(column), "{column}: {text}");
    }
    let png = film.screenshot().await.unwrap();
    std::fs::write(artifacts().join("diagram-film-box.png"), png).unwrap();
    fit_window(&browser).await;
    save_screenshot(&browser, "diagram-pagila.png").await;

    // A box leads to its table's page, and the table page to its neighbourhood.
    browser.set_window_size(1280, 1000).await.unwrap();
    browser
        .find(Locator::Css("g.erd-table[data-table='public.film'] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_of(&browser, "h1").await, "public.film table");
    click_link(&browser, "Diagram with its neighbours").await;
    assert_eq!(
        text_of(&browser, "h1").await,
        "public.film and its neighbours"
    );
    assert_eq!(
        boxes(&browser).await,
        [
            "public.film",
            "public.film_actor",
            "public.film_category",
            "public.inventory",
            "public.language"
        ]
    );
    let focused = browser.find(Locator::Css("g.erd-focus")).await.unwrap();
    assert_eq!(
        focused.attr("data-table").await.unwrap().as_deref(),
        Some("public.film")
    );
    save_screenshot(&browser, "diagram-focus.png").await;

    // 100 generated tables are drawn whole.
    browser
        .goto(&app.url(&format!("/ui/catalogs/{catalog}/schemas/gen/diagram")))
        .await
        .unwrap();
    assert_eq!(boxes(&browser).await.len(), 100);
    fit_window(&browser).await;
    save_screenshot(&browser, "diagram-100.png").await;
    browser.close().await.unwrap();
}

/// A synthetic schema of more than 100 tables is offered a table at a time; the API still
/// draws it whole.
#[tokio::test]
async fn a_schema_of_more_than_100_tables_is_offered_a_table_at_a_time() {
    let app = spawn_app().await;
    let mock = MockSource::spawn().await;
    let mut config = worker_config(&app);
    config.external_metadata_url = Some(mock.url.clone());
    let _worker = app.start_worker(config).await;
    let sync = app.sync_and_wait(&synthetic_body("1x120x5")).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();
    let page = format!("/ui/catalogs/{catalog}/schemas/s0/diagram");
    let response = app.client.get(app.url(&page)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<p id=\"too-big\">This schema has 120 tables"),
        "{html}"
    );
    assert!(!html.contains("<svg"), "not drawn whole");
    let focus_links = html.matches(&format!("href=\"{page}?table=s0.t")).count();
    assert_eq!(focus_links, 120);
    let focus = app
        .client
        .get(app.url(&format!("{page}?table=s0.t7")))
        .send()
        .await
        .unwrap();
    assert_eq!(focus.status(), StatusCode::OK);
    let html = focus.text().await.unwrap();
    assert_eq!(
        html.matches("class=\"erd-table erd-focus\"").count(),
        1,
        "{html}"
    );

    let response = app
        .client
        .get(app.url(&format!("/catalogs/{catalog}/erd?schema=s0")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let svg = response.text().await.unwrap();
    assert_eq!(svg.matches("class=\"erd-table\"").count(), 120);

    // Seen in a browser, the first 100 of such tables, unrelated, stand in a grid.
    let sync = app.sync_and_wait(&synthetic_body("1x100x6")).await;
    let catalog = sync["catalog_id"].as_str().unwrap();
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser
        .goto(&app.url(&format!("/ui/catalogs/{catalog}/schemas/s0/diagram")))
        .await
        .unwrap();
    assert_eq!(boxes(&browser).await.len(), 100);
    fit_window(&browser).await;
    save_screenshot(&browser, "diagram-synthetic-100.png").await;
    browser.close().await.unwrap();
}
