//! Scenario 11: search across 100 catalogs of the 2,000-table shape. One is synced; the other
//! 99 are copies of its snapshot rows made in SQL (a sync of each would only take longer to
//! reach the same rows). Each query runs one request at a time, as a person's searches do.

use std::time::Instant;

use sqlx::PgPool;

use super::catalog::MID;
use super::*;

/// Catalogs searched.
const CATALOGS: usize = 100;
/// Requests per query.
const REQUESTS: usize = 200;

/// An exact relation name, a prefix, a typo, a column name held by every table, a comment
/// word, and a filter by kind: the shapes of the searches the dashboard's box sends.
const QUERIES: [&str; 6] = [
    "q=t1234",
    "q=t123",
    "q=tl234",
    "q=c15&kind=column",
    "q=table%201234",
    "q=root&kind=table",
];

impl Bench {
    pub async fn search(&mut self) -> Result<()> {
        let url = MID.ensure(self).await?;
        let service = Service::start(self, 1, false, &[]).await?;
        let sync_id = service.post_sync(&self.client, &source_body(&url)).await?;
        let synced = service.wait_sync(&self.client, &sync_id).await?;
        let catalog: uuid::Uuid = synced["catalog_id"].as_str().unwrap_or_default().parse()?;
        copy_catalog(&service.store, catalog, CATALOGS - 1).await?;
        let mut worst: Option<(f64, &str)> = None;
        let mut shown = Vec::new();
        for query in QUERIES {
            let mut ms = Vec::with_capacity(REQUESTS);
            for _ in 0..REQUESTS {
                let started = Instant::now();
                let response = self
                    .client
                    .get(format!("{}/search?{query}", service.base))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == 200,
                    "search {query}: {}",
                    response.status()
                );
                response.bytes().await?;
                ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            let p99 = percentile(&ms, 0.99);
            shown.push(format!("{query} {:.1}/{p99:.1}", percentile(&ms, 0.5)));
            if worst.is_none_or(|(w, _)| p99 > w) {
                worst = Some((p99, query));
            }
        }
        service.stop(self).await?;
        let (p99, query) = worst.unwrap_or((0.0, "-"));
        self.reports
            .push(("11, search: p50/p99 ms per query".into(), shown.join("\n")));
        self.row(
            "11. search, 100 x 2,000 tables",
            format!("worst p99 {p99:.1} ms ({query}; {REQUESTS} requests per query)"),
            "-".into(),
            "-".into(),
            "p99 < 50 ms",
        );
        Ok(())
    }
}

/// Copies the snapshot rows of `catalog` into `copies` new catalogs.
async fn copy_catalog(store: &PgPool, catalog: uuid::Uuid, copies: usize) -> Result<()> {
    let started = Instant::now();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.table_name::text FROM information_schema.columns c
         JOIN information_schema.tables t USING (table_schema, table_name)
         WHERE c.table_schema = 'public' AND c.column_name = 'catalog_id'
           AND t.table_type = 'BASE TABLE' AND c.table_name LIKE 'catalog\\_%'
           AND c.table_name NOT IN ('catalog_changes', 'catalog_schedules')",
    )
    .fetch_all(store)
    .await?;
    let catalogs = copy_statement(store, "catalogs", "id").await?;
    let mut statements = Vec::new();
    for table in &tables {
        statements.push(copy_statement(store, table, "catalog_id").await?);
    }
    for n in 1..=copies {
        let id = uuid::Uuid::new_v4();
        let mut tx = store.begin().await?;
        for sql in std::iter::once(&catalogs).chain(&statements) {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .bind(catalog)
                .bind(format!("_copy{n}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    sqlx::raw_sql("VACUUM ANALYZE").execute(store).await?;
    eprintln!(
        "copied {copies} catalogs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `INSERT INTO table SELECT ... FROM table WHERE key = $2`, the key replaced by `$1` and a
/// `dbname` suffixed with `$3` (the catalogs' sources stay distinct).
async fn copy_statement(store: &PgPool, table: &str, key: &str) -> Result<String> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER'
           AND identity_generation IS NULL
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(store)
    .await?;
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let selected: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            c if c == key => "$1::uuid".to_owned(),
            "dbname" => "dbname || $3".to_owned(),
            c => format!("\"{c}\""),
        })
        .collect();
    Ok(format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {table} WHERE {key} = $2 AND $3::text IS NOT NULL",
        quoted.join(", "),
        selected.join(", ")
    ))
}
