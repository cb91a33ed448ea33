//! Rate limits on mutating requests (`RATE_LIMIT`): each token, or each client address on an
//! API without tokens, may make so many per second, with bursts of twice that.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::access::Caller;
use crate::error::ApiError;

/// Keys kept before the idle ones are dropped (one per token or client address).
const MAX_KEYS: usize = 10_000;

/// `RATE_LIMIT`: `50/s`, `600/m`, `3000/h`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSetting {
    Off,
    /// Requests per period, with bursts of twice that.
    Every {
        requests: NonZeroU32,
        period: Duration,
    },
}

impl std::str::FromStr for RateSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let invalid = || {
            format!(
                "{text:?}: expected `off` or requests per unit, like `50/s`, `600/m` or `3000/h`"
            )
        };
        let (count, unit) = text.split_once('/').ok_or_else(invalid)?;
        let requests = count.trim().parse::<NonZeroU32>().map_err(|_| invalid())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        Ok(Self::Every { requests, period })
    }
}

/// The limiter of one API process.
pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl RateLimit {
    /// `None` for `off`.
    pub fn new(setting: RateSetting) -> Option<Self> {
        let RateSetting::Every { requests, period } = setting else {
            return None;
        };
        let burst = requests.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
        let quota = Quota::with_period(period / requests.get())?.allow_burst(burst);
        Some(Self {
            limiter: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one request of `caller` (known by its token's name, else by its address): 429
    /// with the seconds to wait when it is over its limit.
    pub fn check(&self, caller: &Caller, address: Option<IpAddr>) -> Result<(), ApiError> {
        let key = match (caller.name(), address) {
            (Some(name), _) => format!("token:{name}"),
            (None, Some(ip)) => format!("address:{ip}"),
            (None, None) => "anyone".to_owned(),
        };
        if self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_their_units() {
        let every = |n: u32, secs: u64| RateSetting::Every {
            requests: NonZeroU32::new(n).unwrap(),
            period: Duration::from_secs(secs),
        };
        assert_eq!("50/s".parse(), Ok(every(50, 1)));
        assert_eq!(" 600 / m ".parse(), Ok(every(600, 60)));
        assert_eq!("3000/h".parse(), Ok(every(3000, 3600)));
        assert_eq!("OFF".parse(), Ok(RateSetting::Off));
        for bad in ["", "50", "0/s", "-1/s", "50/d", "x/s"] {
            assert!(bad.parse::<RateSetting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_gets_its_burst_then_waits() {
        let limit = RateLimit::new("2/m".parse().unwrap()).unwrap();
        let tokens = crate::access::ApiTokens::parse("a:sync:x,b:sync:y")
            .unwrap()
            .unwrap();
        let (a, b) = (tokens.caller("x").unwrap(), tokens.caller("y").unwrap());
        for _ in 0..4 {
            limit.check(&a, None).unwrap();
        }
        match limit.check(&a, None) {
            Err(ApiError::RateLimited(seconds)) => {
                assert!((1..=30).contains(&seconds), "{seconds}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        limit
            .check(&b, None)
            .expect("another token has its own budget");
    }
}
