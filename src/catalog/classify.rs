//! Whether a change to a catalog can break its clients: the one place the rules live, for the
//! change history, the diff and anything else that reports changes.
//!
//! A change is judged from its record alone (object, action, and the attributes it shows
//! before and after), as the history stores it: an altered object shows only the attributes
//! that changed, an added one its definition, a removed one what it was.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a change can break clients of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// Clients may fail: something they use is gone or now refuses what it took.
    Breaking,
    /// Clients keep working.
    NonBreaking,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Breaking => "breaking",
            Self::NonBreaking => "non_breaking",
        }
    }
}

/// A column's attributes that make up its type.
const TYPE_ATTRIBUTES: [&str; 4] = ["data_type", "type_schema", "type_name", "is_array"];

/// Constraint kinds whose addition refuses rows that were accepted before.
const REFUSING_KINDS: [&str; 3] = ["primary_key", "unique", "check"];

/// Classifies one change. Breaking:
///
/// - a relation, column, function or extension removed (a rename is recorded as a removal and
///   an addition, or as the action `renamed`);
/// - a column's type changed (narrowed or otherwise);
/// - NOT NULL added: an existing column made NOT NULL, or a NOT NULL column added without a
///   default (nor identity or generation), which inserts that omit it cannot fill;
/// - a check, unique or primary key constraint added, or its definition changed;
/// - a column's default removed;
/// - a privilege revoked, or its grant option.
///
/// Everything else is non-breaking: tables, views, nullable columns, indexes, foreign keys,
/// comments and privileges added, other attributes altered.
pub fn classify(
    object: &str,
    action: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Classification {
    let get = |side: Option<&Value>, key: &str| side.and_then(|v| v.get(key)).cloned();
    let breaking = match (object, action) {
        (_, "renamed") => true,
        // An extension takes the functions, types and operators it owns with it.
        ("relation" | "column" | "function" | "extension", "removed") => true,
        ("privilege", "removed") => true,
        ("privilege", "altered") => {
            get(before, "grantable") == Some(Value::Bool(true))
                && get(after, "grantable") == Some(Value::Bool(false))
        }
        ("column", "altered") => {
            let changed = |key: &str| get(before, key) != get(after, key);
            TYPE_ATTRIBUTES.iter().any(|k| changed(k))
                || (get(after, "nullable") == Some(Value::Bool(false)) && changed("nullable"))
                || (is_set(&get(before, "default_expr")) && !is_set(&get(after, "default_expr")))
        }
        ("column", "added") => {
            get(after, "nullable") == Some(Value::Bool(false))
                && !is_set(&get(after, "default_expr"))
                && !is_set(&get(after, "identity"))
                && !is_set(&get(after, "generated"))
        }
        ("constraint", "added" | "altered") => refuses_rows(before, after),
        _ => false,
    };
    match breaking {
        true => Classification::Breaking,
        false => Classification::NonBreaking,
    }
}

/// Whether a value is present and not null.
fn is_set(value: &Option<Value>) -> bool {
    value.as_ref().is_some_and(|v| !v.is_null())
}

/// Whether an added or altered constraint is a primary key, unique or check: by its kind when
/// the record shows it, else by its definition (an altered one shows only what changed).
fn refuses_rows(before: Option<&Value>, after: Option<&Value>) -> bool {
    let Some(after) = after else { return false };
    if let Some(kind) = after.get("kind").and_then(Value::as_str) {
        return REFUSING_KINDS.contains(&kind);
    }
    let definition = after
        .get("definition")
        .and_then(Value::as_str)
        .or_else(|| before?.get("definition")?.as_str());
    definition.is_some_and(|d| {
        ["PRIMARY KEY", "UNIQUE", "CHECK"]
            .iter()
            .any(|prefix| d.starts_with(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::Classification::{Breaking, NonBreaking};
    use super::*;
    use serde_json::json;

    fn of(object: &str, action: &str, before: Value, after: Value) -> Classification {
        let side = |v: &Value| (!v.is_null()).then_some(v.clone());
        classify(
            object,
            action,
            side(&before).as_ref(),
            side(&after).as_ref(),
        )
    }

    #[test]
    fn a_removed_relation_is_breaking() {
        let table = json!({"kind": "table"});
        assert_eq!(
            of("relation", "removed", table.clone(), Value::Null),
            Breaking
        );
        assert_eq!(of("relation", "added", Value::Null, table), NonBreaking);
    }

    #[test]
    fn a_removed_column_is_breaking() {
        let column = json!({"data_type": "text", "nullable": true});
        assert_eq!(of("column", "removed", column, Value::Null), Breaking);
    }

    #[test]
    fn a_removed_function_is_breaking() {
        let function = json!({"arguments": "integer", "result": "integer"});
        assert_eq!(
            of("function", "removed", function.clone(), Value::Null),
            Breaking
        );
        assert_eq!(of("function", "added", Value::Null, function), NonBreaking);
    }

    #[test]
    fn a_rename_is_breaking() {
        assert_eq!(
            of(
                "column",
                "renamed",
                json!({"name": "a"}),
                json!({"name": "b"})
            ),
            Breaking
        );
    }

    #[test]
    fn a_changed_column_type_is_breaking() {
        let narrowed = of(
            "column",
            "altered",
            json!({"data_type": "bigint", "type_name": "int8"}),
            json!({"data_type": "integer", "type_name": "int4"}),
        );
        assert_eq!(narrowed, Breaking);
        let widened = of(
            "column",
            "altered",
            json!({"data_type": "character varying(10)"}),
            json!({"data_type": "character varying(20)"}),
        );
        assert_eq!(widened, Breaking, "any change of type");
    }

    #[test]
    fn not_null_added_is_breaking() {
        let made_not_null = of(
            "column",
            "altered",
            json!({"nullable": true}),
            json!({"nullable": false}),
        );
        assert_eq!(made_not_null, Breaking);
        let made_nullable = of(
            "column",
            "altered",
            json!({"nullable": false}),
            json!({"nullable": true}),
        );
        assert_eq!(made_nullable, NonBreaking);
        let not_null_column = json!({"nullable": false, "default_expr": null});
        assert_eq!(
            of("column", "added", Value::Null, not_null_column),
            Breaking
        );
        let with_default = json!({"nullable": false, "default_expr": "0"});
        assert_eq!(
            of("column", "added", Value::Null, with_default),
            NonBreaking
        );
        let identity = json!({"nullable": false, "identity": "always"});
        assert_eq!(of("column", "added", Value::Null, identity), NonBreaking);
    }

    #[test]
    fn a_nullable_column_added_is_not_breaking() {
        let column = json!({"data_type": "text", "nullable": true, "default_expr": null});
        assert_eq!(of("column", "added", Value::Null, column), NonBreaking);
    }

    #[test]
    fn a_check_unique_or_primary_key_added_is_breaking() {
        for kind in ["check", "unique", "primary_key"] {
            let constraint = json!({"kind": kind, "columns": ["a"]});
            assert_eq!(
                of("constraint", "added", Value::Null, constraint),
                Breaking,
                "{kind}"
            );
        }
        let foreign_key = json!({"kind": "foreign_key", "columns": ["a"]});
        assert_eq!(
            of("constraint", "added", Value::Null, foreign_key),
            NonBreaking
        );
        let removed = json!({"kind": "check"});
        assert_eq!(
            of("constraint", "removed", removed, Value::Null),
            NonBreaking
        );
        let tightened = of(
            "constraint",
            "altered",
            json!({"definition": "CHECK ((price > 0))"}),
            json!({"definition": "CHECK ((price > 10))"}),
        );
        assert_eq!(tightened, Breaking, "a changed check is a new check");
    }

    #[test]
    fn a_removed_default_is_breaking() {
        let removed = of(
            "column",
            "altered",
            json!({"default_expr": "0"}),
            json!({"default_expr": null}),
        );
        assert_eq!(removed, Breaking);
        let added = of(
            "column",
            "altered",
            json!({"default_expr": null}),
            json!({"default_expr": "0"}),
        );
        assert_eq!(added, NonBreaking);
    }

    #[test]
    fn a_revoked_privilege_is_breaking() {
        let grant = json!({"grantee": "reporting", "privilege": "SELECT"});
        assert_eq!(
            of("privilege", "removed", grant.clone(), Value::Null),
            Breaking
        );
        assert_eq!(of("privilege", "added", Value::Null, grant), NonBreaking);
        let (with, without) = (json!({"grantable": true}), json!({"grantable": false}));
        assert_eq!(
            of("privilege", "altered", with.clone(), without.clone()),
            Breaking
        );
        assert_eq!(of("privilege", "altered", without, with), NonBreaking);
    }

    #[test]
    fn indexes_comments_and_tables_added_are_not_breaking() {
        let index = json!({"definition": "CREATE INDEX i ON t USING btree (a)"});
        assert_eq!(
            of("index", "added", Value::Null, index.clone()),
            NonBreaking
        );
        assert_eq!(of("index", "removed", index, Value::Null), NonBreaking);
        let comment = of(
            "relation",
            "altered",
            json!({"comment": null}),
            json!({"comment": "what was bought"}),
        );
        assert_eq!(comment, NonBreaking);
        let column_comment = of(
            "column",
            "altered",
            json!({"comment": null}),
            json!({"comment": "x"}),
        );
        assert_eq!(column_comment, NonBreaking);
    }
}
