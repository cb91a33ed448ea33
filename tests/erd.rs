//! Entity-relationship diagrams (`GET /catalogs/{id}/erd`) of a real schema (Pagila): every
//! table of the source is a node and every foreign key an edge, in Mermaid, dot and SVG alike;
//! a focus on one table shows exactly its neighbours; names of any characters stay escaped.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use reqwest::StatusCode;
use sqlx::PgPool;

const PAGILA: &str = include_str!("fixtures/pagila/pagila-schema.sql");

/// Where the exports go for a person (or Graphviz, or Mermaid) to look at:
/// `target/test-artifacts/erd-*`.
fn artifacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A foreign key as a diagram shows it: (referencing table, referenced table, label).
type Fk = (String, String, String);

/// A diagram's text: status, content type, body.
async fn fetch(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// A node's qualified name from its title (which may end in a kind note).
fn untitled(title: &str) -> String {
    [" (partitioned)", " (partition)", " (foreign)"]
        .iter()
        .fold(title.to_owned(), |t, note| {
            t.trim_end_matches(note).to_owned()
        })
}

/// The nodes and edges of a Mermaid `erDiagram` as the service writes it.
fn parse_mermaid(text: &str) -> (BTreeSet<String>, BTreeSet<Fk>) {
    assert!(text.starts_with("erDiagram\n"), "{text}");
    let mut names = BTreeMap::new();
    let mut edges = Vec::new();
    for line in text.lines().skip(1) {
        let line = line.trim();
        if let Some((id, rest)) = line.split_once("[\"") {
            let title = rest.strip_suffix("\"] {").expect(line);
            names.insert(id.to_owned(), untitled(title));
        } else if let Some((ends, label)) = line.split_once(" : ") {
            let parts: Vec<&str> = ends.split(' ').collect();
            if parts.len() == 3 && parts[1].contains("--") && names.contains_key(parts[0]) {
                let label = label.trim_matches('"').to_owned();
                edges.push((parts[0].to_owned(), parts[2].to_owned(), label));
            }
        }
    }
    let edges = edges
        .into_iter()
        .map(|(a, b, l)| (names[&a].clone(), names[&b].clone(), l))
        .collect();
    (names.into_values().collect(), edges)
}

/// The nodes and edges of the dot the service writes.
fn parse_dot(text: &str) -> (BTreeSet<String>, BTreeSet<Fk>) {
    assert!(
        text.starts_with("digraph erd {\n") && text.ends_with("}\n"),
        "{text}"
    );
    let mut names = BTreeMap::new();
    let mut edges = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some((id, rest)) = line.split_once(" [label=<<TABLE") {
            let title = rest
                .split("<B>")
                .nth(1)
                .unwrap()
                .split("</B>")
                .next()
                .unwrap();
            names.insert(id.to_owned(), untitled(title));
        } else if let Some((ends, label)) = line.split_once(" [label=\"") {
            let (from, to) = ends.split_once(" -> ").expect(line);
            let node = |end: &str| end.split(':').next().unwrap().to_owned();
            let label = label.split("\"").next().unwrap().to_owned();
            edges.push((node(from), node(to), label));
        }
    }
    let edges = edges
        .into_iter()
        .map(|(a, b, l)| (names[&a].clone(), names[&b].clone(), l))
        .collect();
    (names.into_values().collect(), edges)
}

/// Pagila's tables and foreign keys as its own catalog states them.
async fn source_diagram(source: &TestDatabase) -> (BTreeSet<String>, BTreeSet<Fk>) {
    let pool = PgPool::connect(&source.url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT format('%s.%s', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'f')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let keys: Vec<Fk> = sqlx::query_as(
        "SELECT format('%s.%s', n.nspname, c.relname), format('%s.%s', fn.nspname, f.relname),
                format('%s (%s → %s)', k.conname,
                    (SELECT string_agg(a.attname, ', ' ORDER BY u.i) FROM unnest(k.conkey)
                        WITH ORDINALITY u(n, i) JOIN pg_attribute a
                        ON a.attrelid = k.conrelid AND a.attnum = u.n),
                    (SELECT string_agg(a.attname, ', ' ORDER BY u.i) FROM unnest(k.confkey)
                        WITH ORDINALITY u(n, i) JOIN pg_attribute a
                        ON a.attrelid = k.confrelid AND a.attnum = u.n))
         FROM pg_constraint k
         JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
         WHERE k.contype = 'f' AND n.nspname = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    (
        tables.into_iter().map(|(t,)| t).collect(),
        keys.into_iter().collect(),
    )
}

#[tokio::test]
async fn a_pagila_diagram_holds_every_table_and_foreign_key_of_the_source() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let source = TestDatabase::with_ddl("pgcs_pagila", PAGILA).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();
    let (tables, keys) = source_diagram(&source).await;
    assert_eq!(tables.len(), 22, "the fixture loaded: {tables:?}");
    assert_eq!(keys.len(), 36, "{keys:?}");
    let erd = |query: &str| format!("/catalogs/{catalog}/erd?{query}");

    let (status, content_type, text) = fetch(&app, &erd("schema=public&format=mermaid")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type, "text/vnd.mermaid; charset=utf-8");
    std::fs::write(artifacts().join("erd-pagila.mmd"), &text).unwrap();
    let (nodes, edges) = parse_mermaid(&text);
    assert_eq!(nodes, tables);
    assert_eq!(edges, keys);
    assert!(text.contains("        integer film_id PK\n"), "{text}");
    assert!(text.contains("        integer language_id FK\n"), "{text}");

    let (status, content_type, text) = fetch(&app, &erd("schema=public&format=dot")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type, "text/vnd.graphviz; charset=utf-8");
    let (nodes, edges) = parse_dot(&text);
    assert_eq!(nodes, tables);
    assert_eq!(edges, keys);
    std::fs::write(artifacts().join("erd-pagila.dot"), &text).unwrap();

    // The SVG (the default format) is XML with a box per table, titled with its name.
    let (status, content_type, text) = fetch(&app, &erd("schema=public")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type, "image/svg+xml");
    std::fs::write(artifacts().join("erd-pagila.svg"), &text).unwrap();
    let svg = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let boxes: BTreeSet<String> = svg
        .descendants()
        .filter_map(|n| n.attribute("data-table"))
        .map(str::to_owned)
        .collect();
    assert_eq!(boxes, tables);
    let texts: BTreeSet<&str> = svg
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    for table in &tables {
        let name = table.strip_prefix("public.").unwrap();
        assert!(texts.contains(name), "{name} is not shown");
    }
    let edges = svg
        .descendants()
        .filter(|n| {
            n.has_tag_name("path")
                && n.attribute("class")
                    .is_some_and(|c| c.starts_with("erd-edge"))
        })
        .count();
    assert_eq!(edges, keys.len());
    let links = svg
        .descendants()
        .filter_map(|n| n.attribute("href"))
        .filter(|h| h.starts_with(&format!("/ui/catalogs/{catalog}/tables/public/")))
        .count();
    assert_eq!(links, tables.len());

    // Without a schema, the whole catalog: here the same.
    let (_, _, whole) = fetch(&app, &erd("format=dot")).await;
    assert_eq!(parse_dot(&whole).1, keys);

    // A focus: the table, the tables it references and those referencing it, and the foreign
    // keys among them.
    for focus in ["public.film", "public.customer", "public.payment_p2022_03"] {
        let neighbours: BTreeSet<String> = keys
            .iter()
            .filter(|(from, to, _)| from == focus || to == focus)
            .flat_map(|(from, to, _)| [from.clone(), to.clone()])
            .chain([focus.to_owned()])
            .collect();
        let among: BTreeSet<Fk> = keys
            .iter()
            .filter(|(from, to, _)| neighbours.contains(from) && neighbours.contains(to))
            .cloned()
            .collect();
        let (status, _, text) = fetch(&app, &erd(&format!("table={focus}&format=mermaid"))).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let (nodes, edges) = parse_mermaid(&text);
        assert_eq!(nodes, neighbours, "{focus}");
        assert_eq!(edges, among, "{focus}");
    }
    let (_, _, text) = fetch(&app, &erd("table=public.film&format=mermaid")).await;
    let (film, _) = parse_mermaid(&text);
    assert_eq!(
        film.into_iter().collect::<Vec<_>>(),
        [
            "public.film",
            "public.film_actor",
            "public.film_category",
            "public.inventory",
            "public.language"
        ]
    );
    // `table` may name the table alone with `schema`.
    let (_, _, same) = fetch(&app, &erd("schema=public&table=film&format=mermaid")).await;
    assert_eq!(same, text);

    // Mistakes name their parameter; an unknown catalog is not found.
    for (query, field) in [
        ("format=png", "format"),
        ("schema=nowhere", "schema"),
        ("table=public.nothing", "table"),
        ("table=film", "table"),
        ("table=public.film_list", "table"), // a view: no keys to draw
        ("schema=public&table=other.film", "table"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&erd(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, body) = app
        .get(&format!("/catalogs/{}/erd", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app.get("/catalogs/nope/erd").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Names may hold any character: quotes, markup, dots, newlines. Each format keeps them inside
/// its own quoting, and a dotted schema is named in `table` in double quotes.
#[tokio::test]
async fn hostile_names_stay_escaped_in_every_format() {
    let app = spawn_app().await;
    let _worker = app.start_worker(worker_config(&app)).await;
    let ddl = r#"
        CREATE SCHEMA "odd.schema";
        CREATE TABLE "odd.schema"."parent]" ("k""ey" int PRIMARY KEY);
        CREATE TABLE "odd.schema"."quote""d <&> {x}" (
            id int PRIMARY KEY,
            "col ""x"" \" int REFERENCES "odd.schema"."parent]",
            "new
line" int
        );
        CREATE TABLE public."a#b" (x int REFERENCES "odd.schema"."parent]");
    "#;
    let source = TestDatabase::with_ddl("pgcs_src", ddl).await;
    let sync = app.sync_and_wait(&sync_body(&source.name)).await;
    assert_eq!(sync["status"], "succeeded", "{sync}");
    let catalog = sync["catalog_id"].as_str().unwrap();
    let odd = "odd%2Eschema";
    let erd = |query: &str| format!("/catalogs/{catalog}/erd?{query}");

    let (status, _, text) = fetch(&app, &erd(&format!("schema={odd}"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let svg = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    let boxes: BTreeSet<&str> = svg
        .descendants()
        .filter_map(|n| n.attribute("data-table"))
        .collect();
    assert_eq!(
        boxes,
        BTreeSet::from(["odd.schema.parent]", "odd.schema.quote\"d <&> {x}"])
    );
    let texts: Vec<&str> = svg.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"col \"x\" \\"), "{texts:?}");
    assert!(texts.contains(&"new line"), "{texts:?}");

    let (_, _, text) = fetch(&app, &erd(&format!("schema={odd}&format=mermaid"))).await;
    let (nodes, edges) = parse_mermaid(&text);
    assert_eq!(
        nodes,
        BTreeSet::from([
            "odd.schema.parent]".to_owned(),
            "odd.schema.quote#quot;d #lt;&#gt; {x}".to_owned()
        ])
    );
    assert_eq!(edges.len(), 1, "{text}");
    for line in text.lines() {
        assert_eq!(line.matches('"').count() % 2, 0, "{line}");
    }
    std::fs::write(artifacts().join("erd-hostile.mmd"), &text).unwrap();
    let (_, _, text) = fetch(&app, &erd(&format!("schema={odd}&format=dot"))).await;
    std::fs::write(artifacts().join("erd-hostile.dot"), &text).unwrap();
    assert_eq!(text.lines().count(), 4 + 2 + 1 + 1, "{text}");
    assert!(text.contains("col &quot;x&quot; \\"), "{text}");
    assert!(text.contains("[label=\"quote\\\"d"), "no: {text}");

    // The public table references the odd schema's: drawn there, without its columns' types.
    let (_, _, text) = fetch(&app, &erd("schema=public&format=mermaid")).await;
    let (nodes, edges) = parse_mermaid(&text);
    assert_eq!(
        nodes,
        BTreeSet::from(["public.a#35;b".to_owned(), "odd.schema.parent]".to_owned()])
    );
    assert_eq!(edges.len(), 1);
    assert!(text.contains("unknown k_ey \"k#quot;ey\""), "{text}");

    let table = encode_segment("\"odd.schema\".\"parent]\"");
    let (status, _, text) = fetch(&app, &erd(&format!("table={table}&format=mermaid"))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(parse_mermaid(&text).0.len(), 3, "{text}");
}
