//! Limits on what one credential can do, so a runaway producer or a stolen
//! token cannot crowd out everyone else: a token bucket per credential for
//! requests, and a cap on its live connections. Pure state with the clock
//! passed in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket: `rate` tokens a second, holding at most `burst`.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Per-credential rate limiting.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<i64, Bucket>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate: rate_per_sec.max(0.001),
            burst: burst.max(1.0),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `credential` at `now`; when none is left, says
    /// how long until one is.
    pub fn check(&mut self, credential: i64, now: Instant) -> Result<(), Duration> {
        self.check_with(credential, None, None, now)
    }

    /// [`RateLimiter::check`] with the credential's own rate and burst where
    /// it has them (a screening system, a district console wall).
    pub fn check_with(
        &mut self,
        credential: i64,
        rate: Option<f64>,
        burst: Option<f64>,
        now: Instant,
    ) -> Result<(), Duration> {
        let rate = rate.map_or(self.rate, |r| r.max(0.001));
        let burst = burst.map_or(self.burst, |b| b.max(1.0));
        let bucket = self.buckets.entry(credential).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// Live connections per credential, with a cap.
#[derive(Debug, Default)]
pub struct ConnectionCounter {
    live: HashMap<i64, usize>,
}

impl ConnectionCounter {
    /// Counts a new connection unless `credential` already has `cap`.
    pub fn try_open(&mut self, credential: i64, cap: usize) -> bool {
        let n = self.live.entry(credential).or_default();
        if *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    pub fn close(&mut self, credential: i64) {
        if let Some(n) = self.live.get_mut(&credential) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.live.remove(&credential);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(limiter.check(1, t0).is_ok());
        }
        let wait = limiter.check(1, t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        // Another credential has its own bucket.
        assert!(limiter.check(2, t0).is_ok());
        // Half a second later one token is back, and only one.
        let later = t0 + Duration::from_millis(500);
        assert!(limiter.check(1, later).is_ok());
        assert!(limiter.check(1, later).is_err());
        // A credential with its own limits is judged by them.
        for _ in 0..100 {
            assert!(limiter.check_with(3, Some(1000.0), Some(100.0), t0).is_ok());
        }
        assert!(
            limiter
                .check_with(3, Some(1000.0), Some(100.0), t0)
                .is_err()
        );
        let soon = t0 + Duration::from_millis(2);
        assert!(
            limiter
                .check_with(3, Some(1000.0), Some(100.0), soon)
                .is_ok()
        );
    }

    #[test]
    fn connections_are_capped_per_credential_and_released() {
        let mut c = ConnectionCounter::default();
        assert!(c.try_open(7, 2));
        assert!(c.try_open(7, 2));
        assert!(!c.try_open(7, 2));
        assert!(c.try_open(8, 2));
        c.close(7);
        assert!(c.try_open(7, 2));
    }
}
