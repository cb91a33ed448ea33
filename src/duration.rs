//! Durations as people write them in configuration and requests: `500ms`, `30s`, `15m`, `1h`,
//! `7d` (a bare number is seconds).

use std::time::Duration;

/// Parses one whole number with one unit; `None` for anything else (fractions, signs, spaces,
/// several parts, overflow).
pub fn parse(raw: &str) -> Option<Duration> {
    let (number, unit) = raw
        .find(|c: char| !c.is_ascii_digit())
        .map_or((raw, "s"), |i| raw.split_at(i));
    let n: u64 = number.parse().ok()?;
    let seconds_per = match unit {
        "ms" => return Some(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds_per).map(Duration::from_secs)
}

/// The shortest text [`parse`] reads back as `d` (whole seconds and up).
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 {
        return format!("{}ms", d.as_millis());
    }
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// For clap: a duration argument or environment variable.
pub fn parse_arg(raw: &str) -> Result<Duration, String> {
    parse(raw).ok_or_else(|| format!("{raw:?} is not a duration like 30s, 15m, 1h or 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_print_back() {
        for (raw, expected) in [
            ("250ms", Duration::from_millis(250)),
            ("30s", Duration::from_secs(30)),
            ("7", Duration::from_secs(7)),
            ("15m", Duration::from_secs(900)),
            ("1h", Duration::from_secs(3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
        ] {
            assert_eq!(parse(raw), Some(expected), "{raw}");
            assert_eq!(parse(&format(expected)), Some(expected), "{raw}");
        }
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 s",
            "1w",
            "99999999999999999999d",
            "1h30m",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
