//! Fault injection, deterministic per dbname: the n-th request of a dbname always gets the
//! same fate, so tests can count on it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Config;

#[derive(Debug, Default)]
pub struct Faults {
    pub latency_ms: u64,
    fail_first: u64,
    fail_rate: f64,
    hang_rate: f64,
    hang: bool,
    malformed: bool,
    wrong_shape: bool,
    endless: bool,
    bloat_mb: usize,
    status: Option<u16>,
}

impl Faults {
    /// Parses `;`-separated options, over the global defaults.
    pub fn parse(options: &str, config: &Config) -> Result<Self, String> {
        let mut f = Faults {
            latency_ms: config.latency_ms,
            fail_rate: config.fail_rate,
            hang_rate: config.hang_rate,
            ..Faults::default()
        };
        for option in options.split(';').map(str::trim).filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let bad = |_| format!("invalid value for {key}: {value:?}");
            match key {
                "latency_ms" => f.latency_ms = value.parse().map_err(bad)?,
                "fail_first" => f.fail_first = value.parse().map_err(bad)?,
                "fail_rate" => {
                    f.fail_rate = value
                        .parse()
                        .map_err(|_| format!("invalid fail_rate {value:?}"))?
                }
                "hang_rate" => {
                    f.hang_rate = value
                        .parse()
                        .map_err(|_| format!("invalid hang_rate {value:?}"))?
                }
                "hang" => f.hang = true,
                "malformed" => f.malformed = true,
                // Valid JSON of the wrong shape.
                "wrong_shape" => f.wrong_shape = true,
                // A 200 whose body never ends.
                "endless" => f.endless = true,
                // A 200 with a body of this many MiB.
                "bloat_mb" => f.bloat_mb = value.parse().map_err(bad)?,
                "status" => f.status = Some(value.parse().map_err(bad)?),
                // Makes otherwise equal dbnames distinct sources (benchmarks, tests).
                "tag" => {}
                other => return Err(format!("unknown option {other:?}")),
            }
        }
        Ok(f)
    }

    /// The fault for the `n`-th request (1-based) of `dbname`, if any.
    pub async fn inject(&self, dbname: &str, n: u64) -> Option<Response> {
        if self.hang || chance(dbname, n, "hang") < self.hang_rate {
            std::future::pending::<()>().await;
        }
        if let Some(status) = self.status {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some((status, format!("injected status {status}")).into_response());
        }
        if n <= self.fail_first || chance(dbname, n, "fail") < self.fail_rate {
            return Some((StatusCode::SERVICE_UNAVAILABLE, "injected failure").into_response());
        }
        if self.malformed {
            return Some(
                (
                    [("content-type", "application/json")],
                    "{\"schemas\": [{\"name\": ",
                )
                    .into_response(),
            );
        }
        let json = [("content-type", "application/json")];
        if self.wrong_shape {
            return Some((json, r#"{"schemas": "all of them"}"#).into_response());
        }
        if self.endless {
            let chunks = futures::stream::unfold((), |()| async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Some((Ok::<_, std::io::Error>(vec![b' '; 64 * 1024]), ()))
            });
            return Some((json, axum::body::Body::from_stream(chunks)).into_response());
        }
        if self.bloat_mb > 0 {
            let filler = "x".repeat(self.bloat_mb * 1024 * 1024);
            let body = format!(r#"{{"schemas": [], "filler": "{filler}"}}"#);
            return Some((json, body).into_response());
        }
        None
    }
}

/// A number in [0, 1) fixed by (dbname, n, salt): FNV-1a, then scaled.
fn chance(dbname: &str, n: u64, salt: &str) -> f64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in dbname.bytes().chain(n.to_le_bytes()).chain(salt.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}
