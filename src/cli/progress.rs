//! What `sync --wait` and `status --wait` show of a running sync: a status line with a progress
//! bar on a terminal, and a line per phase and tenth elsewhere.

use serde_json::Value;

/// What `follow` shows of a sync.
#[derive(Debug, PartialEq)]
pub(super) struct StatusLine {
    /// The status, with a running sync's progress or the attempt and last error.
    pub line: String,
    /// What must change for another line to be printed when not on a terminal: the line less
    /// its progress bar and counts, and which tenth of the relations is done.
    pub milestone: String,
}

pub(super) fn status_line(sync: &Value) -> StatusLine {
    let status = sync["status"].as_str().unwrap_or("unknown");
    let attempts = sync["attempts"].as_i64();
    let progress = &sync["progress"];
    if status == "running"
        && let Some(phase) = progress["phase"].as_str()
    {
        let done = progress["relations_done"].as_u64().unwrap_or(0);
        let total = progress["relations_total"].as_u64();
        let retry = match attempts {
            Some(a) if a > 1 => format!(" (attempt {a})"),
            _ => String::new(),
        };
        let (shown, tenth) = match total {
            Some(total) => (
                format!(
                    "{phase} {} {done}/{total} relations",
                    bar(done, total, BAR_WIDTH)
                ),
                tenths(done, total).to_string(),
            ),
            None if done > 0 => (format!("{phase} {done} relations"), String::new()),
            None => (phase.to_owned(), String::new()),
        };
        return StatusLine {
            line: format!("{status}: {shown}{retry}"),
            milestone: format!("{status}: {phase} {tenth}{retry}"),
        };
    }
    let line = match (attempts, sync["last_error"].as_str()) {
        (Some(a), Some(error)) if status == "retrying" => {
            format!("{status} (attempt {a}, last error: {error})")
        }
        (Some(a), _) if a > 0 => format!("{status} (attempt {a})"),
        _ => status.to_owned(),
    };
    StatusLine {
        milestone: line.clone(),
        line,
    }
}

/// How many characters wide the progress bar is, between its brackets.
const BAR_WIDTH: usize = 20;

/// `[#####---------------]`: `done` of `total`, `width` characters wide. Nothing to do is done.
fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = match total {
        0 => width,
        total => (u128::from(done.min(total)) * width as u128 / u128::from(total)) as usize,
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// How many whole tenths of `total` are done (0 to 10).
fn tenths(done: u64, total: u64) -> u64 {
    match total {
        0 => 10,
        total => (u128::from(done.min(total)) * 10 / u128::from(total)) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn running(progress: Value, attempts: i64) -> Value {
        json!({"status": "running", "attempts": attempts, "progress": progress})
    }

    #[test]
    fn the_bar_fills_with_the_share_done() {
        assert_eq!(bar(0, 10002, 20), "[--------------------]");
        assert_eq!(bar(4200, 10002, 20), "[########------------]");
        assert_eq!(bar(5001, 10002, 20), "[##########----------]");
        assert_eq!(bar(10001, 10002, 20), "[###################-]");
        assert_eq!(bar(10002, 10002, 20), "[####################]");
        assert_eq!(bar(7, 3, 5), "[#####]", "never more than full");
        assert_eq!(bar(0, 0, 5), "[#####]", "nothing to do is done");
    }

    #[test]
    fn a_running_sync_shows_its_phase_and_counts() {
        let line = |p: Value, attempts| status_line(&running(p, attempts)).line;
        assert_eq!(
            line(
                json!({"phase": "writing", "relations_done": 4200, "relations_total": 10002}),
                1
            ),
            "running: writing [########------------] 4200/10002 relations"
        );
        assert_eq!(
            line(
                json!({"phase": "comparing", "relations_done": 3, "relations_total": 3}),
                1
            ),
            "running: comparing [####################] 3/3 relations"
        );
        assert_eq!(
            line(
                json!({"phase": "reading", "relations_done": 0, "relations_total": null}),
                1
            ),
            "running: reading"
        );
        assert_eq!(
            line(
                json!({"phase": "reading", "relations_done": 0, "relations_total": null}),
                2
            ),
            "running: reading (attempt 2)",
            "a retry says which attempt it is"
        );
        // Without progress (not reported yet), as before.
        assert_eq!(
            status_line(&json!({"status": "running", "attempts": 1})).line,
            "running (attempt 1)"
        );
        assert_eq!(
            status_line(&json!({"status": "retrying", "attempts": 1, "last_error": "refused"}))
                .line,
            "retrying (attempt 1, last error: refused)"
        );
    }

    #[test]
    fn off_a_terminal_a_line_is_printed_per_phase_and_tenth() {
        let milestone = |phase: &str, done: u64, total: Option<u64>| {
            let p = json!({"phase": phase, "relations_done": done, "relations_total": total});
            status_line(&running(p, 1)).milestone
        };
        let total = Some(10_000);
        assert_eq!(
            milestone("writing", 0, total),
            milestone("writing", 999, total)
        );
        assert_ne!(
            milestone("writing", 999, total),
            milestone("writing", 1000, total)
        );
        assert_eq!(
            milestone("writing", 1000, total),
            milestone("writing", 1999, total)
        );
        assert_ne!(
            milestone("comparing", 10_000, total),
            milestone("writing", 0, total)
        );
        assert_ne!(
            milestone("reading", 0, None),
            milestone("comparing", 0, total)
        );
        // Over a whole sync of 10,000 relations polled at every relation: 3 phases, 10 tenths
        // each (and the 0th), so at most a few dozen lines.
        let mut lines = 1;
        let mut last = milestone("reading", 0, None);
        for phase in ["comparing", "writing"] {
            for done in 0..=10_000 {
                let m = milestone(phase, done, total);
                if m != last {
                    lines += 1;
                    last = m;
                }
            }
        }
        assert_eq!(lines, 1 + 2 * 11);
    }
}
