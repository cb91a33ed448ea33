//! When a schedule runs: every fixed period, or on a cron pattern (evaluated in UTC).

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::CronParser;

#[derive(Debug, Clone)]
pub enum Period {
    Every(Duration),
    /// A 5-field pattern (minute hour day month weekday), or 6 fields with seconds first.
    Cron(Box<Cron>),
}

impl Period {
    /// Parses a cron pattern; the error says what is wrong with it.
    pub fn cron(pattern: &str) -> Result<Self, String> {
        let cron = CronParser::new()
            .parse(pattern)
            .map_err(|e| e.to_string())?;
        // A pattern that never matches (the 31st of February) would never run.
        cron.find_next_occurrence(&Utc::now(), false)
            .map_err(|_| "never matches".to_owned())?;
        Ok(Self::Cron(Box::new(cron)))
    }

    /// The schedule as stored: `every_seconds` or `cron`.
    pub fn from_stored(every_seconds: Option<i64>, cron: Option<&str>) -> Result<Self, String> {
        match (every_seconds, cron) {
            (Some(s), None) if s > 0 => Ok(Self::Every(Duration::from_secs(s.unsigned_abs()))),
            (None, Some(pattern)) => Self::cron(pattern),
            _ => Err("a schedule needs either a period or a cron pattern".into()),
        }
    }

    /// The first run strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(d) => chrono::Duration::from_std(*d).ok().map(|d| t + d),
            Self::Cron(cron) => cron.find_next_occurrence(&t, false).ok(),
        }
    }

    /// The period in seconds, for a fixed period.
    pub fn every_seconds(&self) -> Option<i64> {
        match self {
            Self::Every(d) => i64::try_from(d.as_secs()).ok(),
            Self::Cron(_) => None,
        }
    }

    /// The cron pattern, for a cron schedule.
    pub fn cron_pattern(&self) -> Option<String> {
        match self {
            Self::Every(_) => None,
            Self::Cron(cron) => Some(cron.pattern.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_patterns_give_the_next_run() {
        let t: DateTime<Utc> = "2026-11-26T10:15:30Z".parse().unwrap();
        let hourly = Period::Every(Duration::from_secs(3600));
        assert_eq!(
            hourly.next_after(t).unwrap().to_rfc3339(),
            "2026-11-26T11:15:30+00:00"
        );
        let daily = Period::cron("0 3 * * *").unwrap();
        assert_eq!(
            daily.next_after(t).unwrap().to_rfc3339(),
            "2026-11-27T03:00:00+00:00"
        );
        let seconds = Period::cron("*/10 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(t).unwrap().to_rfc3339(),
            "2026-11-26T10:15:40+00:00"
        );
        for bad in ["", "61 * * * *", "* * *", "0 0 31 2 *", "every day"] {
            assert!(Period::cron(bad).is_err(), "{bad}");
        }
    }
}
