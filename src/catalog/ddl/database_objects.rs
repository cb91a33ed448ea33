//! The statements of the database-wide objects, at the end of the script since they name
//! tables, schemas and functions: foreign data wrappers (an extension's is made by `CREATE
//! EXTENSION`), foreign servers (never their user mappings, which the snapshot does not
//! hold), publications, and event triggers, last so that none fires while the script loads.
//! Each gets its owner back (`ALTER ... OWNER TO`).

use super::super::Snapshot;
use super::super::objects::{DatabaseObject, EventTrigger, ForeignServer, Publication};
use super::quote::{ident, literal, qualified};
use crate::catalog::objects::ForeignDataWrapper;

/// Every database-wide object of `snapshot`, as statements, in the order above.
pub(super) fn database_objects(snapshot: &Snapshot) -> Vec<String> {
    let objects = &snapshot.objects;
    let mut lines = Vec::new();
    for o in objects {
        if let DatabaseObject::ForeignDataWrapper(w) = o {
            lines.push(wrapper(w));
            lines.extend(owner("FOREIGN DATA WRAPPER", &w.name, &w.owner));
        }
    }
    for o in objects {
        if let DatabaseObject::ForeignServer(s) = o {
            lines.push(server(s));
            lines.extend(owner("SERVER", &s.name, &s.owner));
        }
    }
    for o in objects {
        if let DatabaseObject::Publication(p) = o {
            lines.push(publication(p));
            lines.extend(owner("PUBLICATION", &p.name, &p.owner));
        }
    }
    for o in objects {
        if let DatabaseObject::EventTrigger(t) = o {
            lines.extend(event_trigger(t));
            lines.extend(owner("EVENT TRIGGER", &t.name, &t.owner));
        }
    }
    lines
}

/// `ALTER {kind} name OWNER TO owner`, where the owner is known.
fn owner(kind: &str, name: &str, owner: &Option<String>) -> Option<String> {
    let owner = owner.as_deref()?;
    Some(format!(
        "ALTER {kind} {} OWNER TO {};",
        ident(name),
        ident(owner)
    ))
}

/// ` OPTIONS (name 'value', ...)` of options stored as `name=value`, if there are any.
fn options(options: &[String]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = options
        .iter()
        .map(|o| {
            let (name, value) = o.split_once('=').unwrap_or((o, ""));
            format!("{} {}", ident(name), literal(value))
        })
        .collect();
    format!(" OPTIONS ({})", pairs.join(", "))
}

fn wrapper(w: &ForeignDataWrapper) -> String {
    let mut statement = format!("CREATE FOREIGN DATA WRAPPER {}", ident(&w.name));
    // Handlers and validators are stored qualified and quoted.
    if let Some(handler) = &w.handler {
        statement.push_str(&format!(" HANDLER {handler}"));
    }
    if let Some(validator) = &w.validator {
        statement.push_str(&format!(" VALIDATOR {validator}"));
    }
    format!("{statement}{};", options(&w.options))
}

fn server(s: &ForeignServer) -> String {
    let mut statement = format!("CREATE SERVER {}", ident(&s.name));
    if let Some(server_type) = &s.server_type {
        statement.push_str(&format!(" TYPE {}", literal(server_type)));
    }
    if let Some(version) = &s.version {
        statement.push_str(&format!(" VERSION {}", literal(version)));
    }
    format!(
        "{statement} FOREIGN DATA WRAPPER {}{};",
        ident(&s.wrapper.name),
        options(&s.options)
    )
}

fn publication(p: &Publication) -> String {
    let mut targets: Vec<String> = p
        .tables
        .iter()
        .map(|t| {
            let mut target = format!("TABLE ONLY {}", qualified(&t.schema, &t.table));
            if let Some(columns) = &t.columns {
                let columns: Vec<String> = columns.iter().map(|c| ident(c)).collect();
                target.push_str(&format!(" ({})", columns.join(", ")));
            }
            if let Some(filter) = &t.row_filter {
                target.push_str(&format!(" WHERE ({filter})"));
            }
            target
        })
        .collect();
    targets.extend(
        p.schemas
            .iter()
            .map(|s| format!("TABLES IN SCHEMA {}", ident(s))),
    );
    let published = match (p.all_tables, targets.is_empty()) {
        (true, _) => " FOR ALL TABLES".to_owned(),
        (false, true) => String::new(),
        (false, false) => format!(" FOR {}", targets.join(", ")),
    };
    format!(
        "CREATE PUBLICATION {}{published} WITH (publish = {}, publish_via_partition_root = {});",
        ident(&p.name),
        literal(&p.operations.join(", ")),
        p.via_root
    )
}

fn event_trigger(t: &EventTrigger) -> Vec<String> {
    let name = ident(&t.name);
    let tags = match t.tags.is_empty() {
        true => String::new(),
        false => {
            let tags: Vec<String> = t.tags.iter().map(|tag| literal(tag)).collect();
            format!(" WHEN TAG IN ({})", tags.join(", "))
        }
    };
    let mut lines = vec![format!(
        "CREATE EVENT TRIGGER {name} ON {}{tags} EXECUTE FUNCTION {}();",
        t.event, t.function
    )];
    let enabled = match t.enabled.as_str() {
        "disabled" => Some("DISABLE"),
        "replica" => Some("ENABLE REPLICA"),
        "always" => Some("ENABLE ALWAYS"),
        _ => None,
    };
    if let Some(enabled) = enabled {
        lines.push(format!("ALTER EVENT TRIGGER {name} {enabled};"));
    }
    lines
}
