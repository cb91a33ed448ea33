//! Reads a catalog the way a worker does (two connections), several times, and prints the
//! wall time and CPU time of each read:
//! `cargo run --release --example read_catalog -- URL [RUNS]`.

use std::time::{Duration, Instant};

use sqlx::Connection;

fn cpu_seconds() -> (f64, f64) {
    // This process's user+system time, and the whole machine's busy time.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let own = (ticks(11) + ticks(12)) / 100.0;
    let machine = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> = machine
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let busy: f64 =
        cpu.iter().sum::<f64>() - cpu.get(3).unwrap_or(&0.0) - cpu.get(4).unwrap_or(&0.0);
    (own, busy / 100.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: read_catalog URL [RUNS]");
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let options = pg_catalog_sync::introspect::Options {
        statement_timeout: Duration::from_secs(300),
        ..Default::default()
    };
    for _ in 0..runs {
        let (own0, busy0) = cpu_seconds();
        let started = Instant::now();
        let (mut conn, mut helper) = tokio::try_join!(
            sqlx::PgConnection::connect(&url),
            sqlx::PgConnection::connect(&url)
        )?;
        // The pieces are counted and dropped as they come, as a writer takes them.
        let (sender, mut pieces) = tokio::sync::mpsc::channel(1);
        let count = tokio::spawn(async move {
            let mut columns = 0;
            while let Some(piece) = pieces.recv().await {
                if let pg_catalog_sync::catalog::Piece::Relations(batch) = piece {
                    columns += batch.iter().map(|r| r.table.columns.len()).sum::<usize>();
                }
            }
            columns
        });
        pg_catalog_sync::introspect::introspect(&mut conn, &mut helper, &options, &sender).await?;
        drop(sender);
        let columns = count.await?;
        let wall = started.elapsed().as_secs_f64();
        let (own1, busy1) = cpu_seconds();
        println!(
            "read {wall:.3} s wall, worker cpu {:.2} s, machine busy {:.2} s, {columns} columns",
            own1 - own0,
            busy1 - busy0,
        );
        let _ = helper.close().await;
        let _ = conn.close().await;
    }
    Ok(())
}
