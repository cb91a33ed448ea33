use super::*;
use crate::catalog::{
    Column, ColumnRef, Constraint, ConstraintKind, Extension, Index as TableIndex, QualifiedName,
    RelationUse, Trigger, TypeAttribute,
};

fn column(name: &str, data_type: &str, ordinal: i32) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        nullable: true,
        ordinal: Some(ordinal),
        ..Column::default()
    }
}

fn type_def(name: &str, kind: TypeKind) -> TypeDef {
    TypeDef {
        name: name.into(),
        kind,
        owner: None,
        comment: None,
        labels: vec![],
        base_type: None,
        not_null: false,
        default: None,
        checks: vec![],
        attributes: vec![],
        range_options: None,
        extension: None,
    }
}

fn function(name: &str, kind: &str, result: &str, definition: &str) -> Function {
    Function {
        name: name.into(),
        owner: None,
        arguments: String::new(),
        result: Some(result.into()),
        language: "sql".into(),
        kind: kind.into(),
        comment: None,
        definition: Some(definition.into()),
        uses: vec![],
        extension: None,
    }
}

/// The position of `needle` in `sql`, which must hold it.
fn at(sql: &str, needle: &str) -> usize {
    sql.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in:\n{sql}"))
}

fn snapshot(schema: Schema) -> Snapshot {
    Snapshot {
        database: None,
        schemas: vec![schema],
        access: None,
        objects: Vec::new(),
    }
}

#[test]
fn types_come_after_the_types_they_name() {
    let mut domain = type_def("positive_rating", TypeKind::Domain);
    domain.base_type = Some("rating".into());
    domain.checks = vec!["CHECK ((VALUE <> 'NC-17'::rating))".into()];
    domain.not_null = true;
    let mut composite = type_def("Pair", TypeKind::Composite);
    composite.attributes = vec![TypeAttribute {
        name: "left".into(),
        data_type: "positive_rating".into(),
    }];
    let mut rating = type_def("rating", TypeKind::Enum);
    rating.labels = vec!["G".into(), "it's".into()];
    let sql = render(&snapshot(Schema {
        name: "public".into(),
        types: vec![composite, domain, rating],
        extensions: vec![Extension {
            name: "uuid-ossp".into(),
            version: Some("1.1".into()),
            members: Vec::new(),
        }],
        ..Schema::default()
    }));
    assert!(sql.contains("CREATE TYPE public.rating AS ENUM ('G', 'it''s');"));
    assert!(sql.contains(
        "CREATE DOMAIN public.positive_rating AS rating NOT NULL CHECK ((VALUE <> 'NC-17'::rating));"
    ));
    assert!(sql.contains("CREATE TYPE public.\"Pair\" AS (\"left\" positive_rating);"));
    assert!(at(&sql, "TYPE public.rating") < at(&sql, "DOMAIN public.positive_rating"));
    assert!(at(&sql, "DOMAIN public.positive_rating") < at(&sql, "TYPE public.\"Pair\""));
    assert!(sql.contains("CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA public;"));
    assert!(
        !sql.contains("CREATE SCHEMA public"),
        "public exists already"
    );
}

#[test]
fn tables_views_and_keys_come_in_dependency_order() {
    let mut film = Table {
        name: "film".into(),
        columns: vec![
            column("title", "text", 2),
            Column {
                nullable: false,
                identity: Some("always".into()),
                ..column("film_id", "integer", 1)
            },
        ],
        constraints: vec![Constraint {
            name: "film_pkey".into(),
            kind: ConstraintKind::PrimaryKey,
            columns: vec!["film_id".into()],
            definition: Some("PRIMARY KEY (film_id)".into()),
            references: None,
            deferrable: false,
            initially_deferred: false,
        }],
        indexes: vec![
            TableIndex {
                name: "film_pkey".into(),
                columns: vec!["film_id".into()],
                unique: true,
                primary: true,
                method: Some("btree".into()),
                predicate: None,
                include: vec![],
                expression_columns: vec![],
                definition: Some(
                    "CREATE UNIQUE INDEX film_pkey ON public.film USING btree (film_id)".into(),
                ),
            },
            TableIndex {
                name: "film_title".into(),
                columns: vec!["title".into()],
                unique: false,
                primary: false,
                method: Some("btree".into()),
                predicate: None,
                include: vec![],
                expression_columns: vec![],
                definition: Some(
                    "CREATE INDEX film_title ON public.film USING btree (title)".into(),
                ),
            },
        ],
        triggers: vec![Trigger {
            name: "stamp".into(),
            timing: "BEFORE".into(),
            events: vec!["UPDATE".into()],
            for_each: "ROW".into(),
            function: "public.stamp".into(),
            enabled: false,
            definition:
                "CREATE TRIGGER stamp BEFORE UPDATE ON film FOR EACH ROW EXECUTE FUNCTION stamp()"
                    .into(),
            columns: vec![],
        }],
        comment: Some("Films".into()),
        ..Table::default()
    };
    film.columns[0].comment = Some("The title".into());
    let view = |name: &str, reads: &str| Table {
        name: name.into(),
        kind: RelationKind::View,
        definition: Some(format!(" SELECT * FROM {reads};")),
        depends_on: vec![RelationUse {
            schema: "public".into(),
            name: reads.into(),
            columns: None,
        }],
        ..Table::default()
    };
    let sql = render(&snapshot(Schema {
        name: "public".into(),
        tables: vec![view("a_view", "b_view"), view("b_view", "film"), film],
        sequences: vec![Sequence {
            name: "film_film_id_seq".into(),
            owner: None,
            data_type: "integer".into(),
            start: 1,
            increment: 1,
            min: 1,
            max: 2147483647,
            cache: 1,
            cycle: false,
            owned_by: Some(ColumnRef {
                schema: "public".into(),
                table: "film".into(),
                column: "film_id".into(),
            }),
            extension: None,
        }],
        functions: vec![
            function(
                "concat_agg",
                "aggregate",
                "text",
                "CREATE AGGREGATE public.concat_agg(text) (SFUNC = step, STYPE = text)",
            ),
            function(
                "step",
                "function",
                "text",
                "CREATE OR REPLACE FUNCTION public.step()\n RETURNS text\n",
            ),
            function(
                "films",
                "function",
                "SETOF film",
                "CREATE OR REPLACE FUNCTION public.films()\n RETURNS SETOF film\n",
            ),
        ],
        ..Schema::default()
    }));
    // The identity column makes its sequence: no CREATE SEQUENCE nor OWNED BY of its own.
    assert!(sql.contains(
        "film_id integer GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME public.film_film_id_seq START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 CACHE 1)"
    ), "{sql}");
    assert!(!sql.contains("CREATE SEQUENCE"));
    assert!(!sql.contains("OWNED BY"));
    // Columns in ordinal order.
    assert!(at(&sql, "film_id integer") < at(&sql, "title text"));
    assert!(at(&sql, "FUNCTION public.step()") < at(&sql, "AGGREGATE public.concat_agg"));
    assert!(at(&sql, "AGGREGATE public.concat_agg") < at(&sql, "CREATE TABLE public.film"));
    assert!(at(&sql, "CREATE TABLE public.film") < at(&sql, "FUNCTION public.films()"));
    assert!(at(&sql, "CREATE VIEW public.b_view") < at(&sql, "CREATE VIEW public.a_view"));
    assert!(sql.contains("CREATE VIEW public.b_view AS\n SELECT * FROM film;\n"));
    assert!(
        sql.contains("ALTER TABLE public.film ADD CONSTRAINT film_pkey PRIMARY KEY (film_id);")
    );
    assert!(!sql.contains("INDEX film_pkey"), "the key makes its index");
    assert!(at(&sql, "ADD CONSTRAINT film_pkey") < at(&sql, "CREATE INDEX film_title"));
    assert!(sql.contains("ALTER TABLE public.film DISABLE TRIGGER stamp;"));
    assert!(sql.contains("COMMENT ON TABLE public.film IS 'Films';"));
    assert!(sql.contains("COMMENT ON COLUMN public.film.title IS 'The title';"));
}

#[test]
fn partitions_are_attached_and_keyed_before_their_parents() {
    let key = |name: &str| Constraint {
        name: name.into(),
        kind: ConstraintKind::PrimaryKey,
        columns: vec!["id".into()],
        definition: Some("PRIMARY KEY (id)".into()),
        references: None,
        deferrable: false,
        initially_deferred: false,
    };
    let trigger = Trigger {
        name: "audit".into(),
        timing: "AFTER".into(),
        events: vec!["INSERT".into()],
        for_each: "ROW".into(),
        function: "public.audit".into(),
        enabled: true,
        definition:
            "CREATE TRIGGER audit AFTER INSERT ON payment FOR EACH ROW EXECUTE FUNCTION audit()"
                .into(),
        columns: vec![],
    };
    let parent = Table {
        name: "payment".into(),
        kind: RelationKind::PartitionedTable,
        partition_key: Some("RANGE (id)".into()),
        columns: vec![column("id", "integer", 1)],
        constraints: vec![key("payment_pkey")],
        triggers: vec![trigger.clone()],
        ..Table::default()
    };
    let partition = Table {
        name: "payment 2022".into(),
        partition_of: Some(QualifiedName {
            schema: "public".into(),
            name: "payment".into(),
        }),
        partition_bound: Some("FOR VALUES FROM (1) TO (10)".into()),
        columns: vec![column("id", "integer", 1)],
        constraints: vec![key("payment 2022_pkey")],
        triggers: vec![trigger],
        ..Table::default()
    };
    let sql = render(&snapshot(Schema {
        name: "public".into(),
        tables: vec![parent, partition],
        ..Schema::default()
    }));
    assert!(
        sql.contains("CREATE TABLE public.payment (\n    id integer\n) PARTITION BY RANGE (id);")
    );
    assert!(sql.contains(
        "ALTER TABLE public.payment ATTACH PARTITION public.\"payment 2022\" FOR VALUES FROM (1) TO (10);"
    ));
    assert!(
        at(&sql, "ADD CONSTRAINT \"payment 2022_pkey\"") < at(&sql, "ADD CONSTRAINT payment_pkey")
    );
    assert_eq!(
        sql.matches("CREATE TRIGGER audit").count(),
        1,
        "the parent's makes the clone"
    );
}
