//! Search across catalogs (`GET /search`, `/ui/search`): two synced sources with overlapping
//! names, searched by exact names, prefixes, typos and comments, filtered, paged, and through a
//! token limited to one catalog.

mod common;

use common::*;
use pg_catalog_sync::store::catalogs::catalog_id_for;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;

const SHOP: &str = "
    CREATE SCHEMA sales;
    COMMENT ON SCHEMA sales IS 'Orders and invoices';
    CREATE TABLE public.customer (id int PRIMARY KEY, email text, emails text[],
                                  email_address text, name text);
    COMMENT ON COLUMN public.customer.name IS 'Full legal name of the buyer';
    CREATE TABLE public.customers_archive (id int, email text);
    CREATE TABLE sales.orders (id int, customer_id int, total numeric);
    COMMENT ON TABLE sales.orders IS 'Every purchase a customer made';
    CREATE VIEW public.email_view AS SELECT id, email FROM public.customer;
";

const CRM: &str = "
    CREATE TABLE public.contacts (id int, email text, phone text);
    CREATE TABLE public.customer (id int, region text);
";

struct Setup {
    app: TestApp,
    shop: String,
    crm: String,
    sources: (TestDatabase, TestDatabase),
}

/// Both sources synced, by an API whose `admin` token every request of `app.client` carries;
/// `b-token` reads only the CRM catalog.
async fn setup() -> Setup {
    let shop = TestDatabase::with_ddl("pgcs_src_shop", SHOP).await;
    let crm = TestDatabase::with_ddl("pgcs_src_crm", CRM).await;
    let (host, port) = server_host_port();
    let shop_id = catalog_id_for(&host, port, &shop.name).to_string();
    let crm_id = catalog_id_for(&host, port, &crm.name).to_string();
    let mut app = spawn_app_with(AppOptions {
        api_tokens: Some(format!("ops:admin:a-token,team:read:b-token:{crm_id}")),
        ..AppOptions::default()
    })
    .await;
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a-token"));
    app.client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let worker = app.start_worker(worker_config(&app)).await;
    for db in [&shop, &crm] {
        let synced = app.sync_and_wait(&sync_body(&db.name)).await;
        assert_eq!(synced["status"], "succeeded", "{synced}");
    }
    worker.shutdown.cancel();
    let _ = worker.join.await;
    Setup {
        app,
        shop: shop_id,
        crm: crm_id,
        sources: (shop, crm),
    }
}

/// One page of `GET /search?{query}`.
async fn search(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/search?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body.as_array().unwrap().clone()
}

/// `kind schema.relation.name` of each hit, the catalog named by `s`hop or `c`rm.
fn shown(setup: &Setup, hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            let catalog = match h["catalog_id"].as_str().unwrap() {
                id if id == setup.shop => "shop",
                id if id == setup.crm => "crm",
                other => panic!("a hit in an unknown catalog {other}"),
            };
            let relation = h["relation"]
                .as_str()
                .map(|r| format!("{r}."))
                .unwrap_or_default();
            format!(
                "{catalog} {} {}.{relation}{}",
                h["kind"].as_str().unwrap(),
                h["schema"].as_str().unwrap(),
                h["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn search_ranks_exact_names_first_finds_typos_and_comments_and_pages() {
    let setup = setup().await;
    let app = &setup.app;

    // An exact name beats a longer one that starts with it, which beats a less similar one;
    // ties go by catalog, schema, relation. The column of the view is a column too.
    let hits = search(app, "q=Email").await;
    let mut names: Vec<&str> = hits.iter().map(|h| h["name"].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(names, ["email", "emails", "email_view", "email_address"]);
    let exact: Vec<&Value> = hits.iter().filter(|h| h["name"] == "email").collect();
    assert_eq!(exact.len(), 4, "{hits:?}");
    assert!(
        exact
            .iter()
            .all(|h| h["score"] == 1.0 && h["matched"] == "name")
    );
    let mut by_catalog: Vec<&str> = exact
        .iter()
        .map(|h| h["catalog_id"].as_str().unwrap())
        .collect();
    by_catalog.dedup();
    assert_eq!(by_catalog.len(), 2, "exact hits are grouped by catalog");
    let view = hits.iter().find(|h| h["name"] == "email_view").unwrap();
    assert_eq!(view["kind"], "view");
    assert_eq!(
        view["source"],
        format!(
            "{}:{}/{}",
            server_host_port().0,
            server_host_port().1,
            setup.sources.0.name
        )
    );
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // A typo still finds the name: both `customer` tables first, then a similar column.
    let hits = search(app, "q=custmer").await;
    assert_eq!(
        shown(&setup, &hits),
        [
            format!("{} table public.customer", first_of(&setup)),
            format!("{} table public.customer", second_of(&setup)),
            "shop column sales.orders.customer_id".to_owned(),
        ]
    );
    assert!(hits.iter().all(|h| h["matched"] == "name"));
    assert!(hits[0]["score"].as_f64().unwrap() < 1.0);

    // Names first, then the comment that mentions a customer.
    let hits = search(app, "q=customer").await;
    assert_eq!(
        shown(&setup, &hits),
        [
            format!("{} table public.customer", first_of(&setup)),
            format!("{} table public.customer", second_of(&setup)),
            "shop column sales.orders.customer_id".to_owned(), // the more similar prefix
            "shop table public.customers_archive".to_owned(),
            "shop table sales.orders".to_owned(),
        ]
    );
    assert_eq!(hits[4]["matched"], "comment");
    assert_eq!(hits[4]["comment"], "Every purchase a customer made");

    // A comment match: a column whose name has nothing of the query, and a schema.
    let hits = search(app, "q=buyer").await;
    assert_eq!(shown(&setup, &hits), ["shop column public.customer.name"]);
    assert_eq!(hits[0]["matched"], "comment");
    assert_eq!(hits[0]["comment"], "Full legal name of the buyer");
    let hits = search(app, "q=INVOICES").await;
    assert_eq!(shown(&setup, &hits), ["shop schema sales.sales"]);

    // Filters: a kind, a catalog.
    let hits = search(app, "q=email&kind=view").await;
    assert_eq!(shown(&setup, &hits), ["shop view public.email_view"]);
    let hits = search(app, "q=customer&kind=table").await;
    assert_eq!(
        shown(&setup, &hits),
        [
            format!("{} table public.customer", first_of(&setup)),
            format!("{} table public.customer", second_of(&setup)),
            "shop table public.customers_archive".to_owned(),
            "shop table sales.orders".to_owned(), // by its comment
        ]
    );
    let hits = search(app, &format!("q=email&catalog={}", setup.crm)).await;
    assert_eq!(shown(&setup, &hits), ["crm column public.contacts.email"]);

    // Paging: pages of two, followed through the Link header, are the whole ranking.
    let whole = search(app, "q=email").await;
    let (paged, pages) = app.get_all_pages("/search?q=email&limit=2").await;
    assert_eq!(paged, whole);
    assert_eq!(pages, whole.len().div_ceil(2));
    let (paged, pages) = app.get_all_pages("/search?q=customer&limit=1").await;
    assert_eq!(
        paged,
        search(app, "q=customer").await,
        "from names to comments"
    );
    assert_eq!(pages, 5);

    // The query is required, 1 to 200 characters besides spaces; filters are checked.
    for bad in ["", "q=", "q=%20%20", &format!("q={}", "x".repeat(201))] {
        let (status, body) = app.get(&format!("/search?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "q", "{bad}");
    }
    for (bad, field) in [
        ("q=x&kind=index", "kind"),
        ("q=x&catalog=nope", "catalog"),
        ("q=x&cursor=bogus", "cursor"),
    ] {
        let (status, body) = app.get(&format!("/search?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{bad}");
    }
}

/// The catalog whose id sorts first: ties in the ranking go by catalog id.
fn first_of(setup: &Setup) -> &'static str {
    match setup.shop < setup.crm {
        true => "shop",
        false => "crm",
    }
}

fn second_of(setup: &Setup) -> &'static str {
    match setup.shop < setup.crm {
        true => "crm",
        false => "shop",
    }
}

#[tokio::test]
async fn a_limited_token_searches_only_its_catalogs_and_the_dashboard_lists_hits() {
    let setup = setup().await;
    let app = &setup.app;
    let limited = reqwest::Client::new();
    let get = |path: String| limited.get(app.url(&path)).bearer_auth("b-token").send();

    let response = get("/search?q=email".into()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let hits: Vec<Value> = response.json().await.unwrap();
    assert_eq!(shown(&setup, &hits), ["crm column public.contacts.email"]);
    let response = get(format!("/search?q=email&catalog={}", setup.shop))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "catalog_not_allowed");

    // The dashboard: a search box on the overview, and the hits with links to their pages.
    let overview = app.client.get(app.url("/ui")).send().await.unwrap();
    let overview = overview.text().await.unwrap();
    assert!(overview.contains(r#"<form class="search" method="get" action="/ui/search">"#));
    let page = app
        .client
        .get(app.url("/ui/search?q=custmer"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let rows = page.matches("<tr><td>").count();
    assert_eq!(rows, 3, "{page}");
    for (catalog, path) in [
        (&setup.shop, "tables/public/customer"),
        (&setup.crm, "tables/public/customer"),
        (&setup.shop, "tables/sales/orders"),
    ] {
        let href = format!(r#"href="/ui/catalogs/{catalog}/{path}""#);
        assert!(page.contains(&href), "{href} in {page}");
    }
    assert!(page.contains(">customer_id</a>"), "{page}");
    // The limited token's dashboard lists only its catalog's hits.
    let page = limited
        .get(app.url("/ui/search?q=customer"))
        .bearer_auth("b-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("<tr><td>").count(), 1, "{page}");
    assert!(page.contains(&format!(
        "/ui/catalogs/{}/tables/public/customer",
        setup.crm
    )));
    // Pages of one link to the next.
    let page = app
        .client
        .get(app.url("/ui/search?q=custmer&limit=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<a rel="next" href="/ui/search?q=custmer&amp;limit=1&amp;cursor="#),
        "{page}"
    );
}
