//! Answers of the API boiled down to what an assertion compares: names, kinds, changes and
//! definitions in order.

use serde_json::{Value, json};

/// The string `key` of every object of a JSON array, in order.
pub fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

/// Listed relations (a JSON array, as `GET /catalogs/{id}/tables` lists them) as
/// (schema, name, kind), in order.
pub fn relation_kinds(list: &Value) -> Vec<(String, String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["schema"].as_str().unwrap().to_owned(),
                t["name"].as_str().unwrap().to_owned(),
                t["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Recorded changes (a JSON array, as the API lists them) as (object, action, relation, name).
pub fn change_summary(changes: &Value) -> Vec<(String, String, String, Option<String>)> {
    changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["object"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
                c["relation"].as_str().unwrap().to_owned(),
                c["name"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// (schema, table, name, definition) rows as `TestApp::served_definitions` gives them: sorted,
/// as JSON objects (readable in an assertion's failure).
pub fn definitions_json(mut rows: Vec<(String, String, String, String)>) -> Vec<Value> {
    rows.sort();
    rows.into_iter()
        .map(|(s, t, n, d)| json!({"table": format!("{s}.{t}"), "name": n, "definition": d}))
        .collect()
}
