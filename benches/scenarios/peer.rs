//! Scenario 8: a peer's ingestion of the 2,000-table catalog beside our full sync of it: DataHub's
//! PostgreSQL source (`acryl-datahub[postgres]`, which `scripts/bench` installs in a virtual
//! environment under `target/tools/datahub`), writing to a file sink with profiling off.
//! `BENCH_DATAHUB` names another `datahub` command.

use std::path::Path;

use super::catalog::{MID, timed_sync};
use super::*;

impl Bench {
    pub async fn peer(&mut self) -> Result<()> {
        let datahub = env("BENCH_DATAHUB", "target/tools/datahub/bin/datahub");
        anyhow::ensure!(
            Path::new(&datahub).exists(),
            "no DataHub command at {datahub}: scripts/bench installs it"
        );
        let url = MID.ensure(self).await?;
        let source = reqwest::Url::parse(&url)?;
        let dir = std::env::temp_dir().join(format!("pgcs_bench_peer_{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (recipe, output, rss) = (
            dir.join("recipe.yml"),
            dir.join("metadata.json"),
            dir.join("rss"),
        );
        std::fs::write(
            &recipe,
            format!(
                "source:\n  type: postgres\n  config:\n    host_port: \"{host}:{port}\"\n    \
                 database: {db}\n    username: {user}\n    password: \"{password}\"\n    \
                 profiling:\n      enabled: false\n\
                 sink:\n  type: file\n  config:\n    filename: {output}\n",
                host = source.host_str().unwrap_or("127.0.0.1"),
                port = source.port().unwrap_or(5432),
                db = source.path().trim_start_matches('/'),
                user = source.username(),
                password = source.password().unwrap_or(""),
                output = output.display(),
            ),
        )?;

        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_rss, mut their_rss) = (0f64, 0f64);
        for _ in 0..self.runs {
            let service = Service::start(self, 1, false, &[]).await?;
            let (seconds, _) = timed_sync(self, &service, &source_body(&url)).await?;
            ours.push(seconds);
            our_rss = our_rss.max(service.worker_peak_rss_mib());
            service.stop(self).await?;

            let _ = std::fs::remove_file(&output);
            let started = Instant::now();
            let status = Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&rss)
                .args([datahub.as_str(), "ingest", "-c"])
                .arg(&recipe)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            theirs.push(started.elapsed().as_secs_f64());
            anyhow::ensure!(status.success(), "datahub ingest failed: {status}");
            let written = std::fs::read_to_string(&output)?;
            anyhow::ensure!(
                written.contains("t1999"),
                "DataHub's output lacks the last table"
            );
            let kib: f64 = std::fs::read_to_string(&rss)?.trim().parse()?;
            their_rss = their_rss.max(kib / 1024.0);
        }
        let _ = std::fs::remove_dir_all(&dir);
        let (ours, theirs) = (median(ours), median(theirs));
        self.row(
            "8. peer: DataHub, 2,000 tables",
            format!("{ours:.2} s, worker peak RSS {our_rss:.0} MiB"),
            format!("datahub ingest {theirs:.1} s, {their_rss:.0} MiB"),
            format!("{:.0}x faster", theirs / ours),
            ">= 100x faster",
        );
        Ok(())
    }
}
