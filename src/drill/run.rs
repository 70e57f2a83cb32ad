//! `crisisdesk drill run`: plays a scenario's timeline into a relay over
//! HTTP (`POST /v1/alerts`). The schedule and the retry policy are plain
//! code over a [`Deliver`] trait, so they are tested without a network;
//! `drill::http::HttpRelay` is the one real delivery.
//!
//! Retrying is safe because each inject's alert is built once and re-posted
//! unchanged: the relay answers a repeat with `duplicate: true` and stores
//! nothing new.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{Local, Utc};
use thiserror::Error;

use super::scenario::{Scenario, alert_id};
use crate::protocol::Alert;

/// Most a run may compress the timeline: a day per second.
pub const MAX_SPEED: f64 = 86_400.0;
/// Longest exercise id; leaves room for `-<n>` in a 128-character alert id.
pub const MAX_EXERCISE_ID_CHARS: usize = 100;
/// Longest wait between two attempts at one inject.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub exercise_id: String,
    /// How much faster than real time to play (`60`: a minute per second).
    pub speed: f64,
    /// Further attempts after a failed post, each after twice the wait
    /// before it (from `first_backoff`, at most 30 s).
    pub retries: u32,
    pub first_backoff: Duration,
}

impl RunOptions {
    pub fn new(exercise_id: String) -> RunOptions {
        RunOptions {
            exercise_id,
            speed: 1.0,
            retries: 5,
            first_backoff: Duration::from_millis(500),
        }
    }
}

/// The relay's answer to one stored (or already stored) alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub seq: i64,
    pub case_id: String,
    pub duplicate: bool,
}

/// Why one post failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PostError {
    /// Might succeed later: no connection, a timeout, a 5xx, 429.
    #[error("{0}")]
    Transient(String),
    /// The relay refused the alert for a reason a retry cannot fix (bad
    /// token, wrong role, invalid alert, id already used).
    #[error("{0}")]
    Refused(String),
}

/// Something that takes alerts: a relay over HTTP, or a test double.
pub trait Deliver {
    fn post(&mut self, alert: &Alert) -> Result<Delivered, PostError>;
}

/// One inject as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// 1-based position in the timeline; the alert id is `<exercise>-<n>`.
    pub n: usize,
    pub inject: String,
    pub alert_id: String,
    pub seq: i64,
    pub case_id: String,
    pub duplicate: bool,
    pub attempts: u32,
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error(
        "inject #{n} `{inject}` could not be delivered after {attempts} attempt(s): {reason}; \
         {delivered} earlier inject(s) were delivered"
    )]
    Undelivered {
        n: usize,
        inject: String,
        attempts: u32,
        reason: String,
        delivered: usize,
    },
    #[error(
        "inject #{n} `{inject}` was refused by the relay: {reason}; \
         {delivered} earlier inject(s) were delivered"
    )]
    Refused {
        n: usize,
        inject: String,
        reason: String,
        delivered: usize,
    },
    #[error("cannot write progress: {0}")]
    Output(#[from] std::io::Error),
}

/// Checks a user-given exercise id: it becomes part of every alert id.
pub fn check_exercise_id(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if n == 0 || n > MAX_EXERCISE_ID_CHARS {
        return Err(format!(
            "--exercise-id must be 1 to {MAX_EXERCISE_ID_CHARS} characters, got {n}"
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("--exercise-id must not contain spaces or control characters".into());
    }
    Ok(())
}

/// Checks `--speed`.
pub fn check_speed(speed: f64) -> Result<(), String> {
    if speed.is_finite() && speed > 0.0 && speed <= MAX_SPEED {
        Ok(())
    } else {
        Err(format!(
            "--speed must be a number above 0 and at most {MAX_SPEED} (60: a minute per second)"
        ))
    }
}

/// Plays `scenario` into `relay`: waits for each inject's time (scaled by
/// `speed`), posts it, retries transient failures with backoff, and writes
/// one line per inject to `out` (position, name, `seq`, case id; never a
/// student's name or an alert's text). Stops at the first inject that
/// cannot be delivered. `sleep` is the clock's wait (tests pass a fake).
pub fn play(
    scenario: &Scenario,
    options: &RunOptions,
    relay: &mut dyn Deliver,
    out: &mut dyn Write,
    sleep: &mut dyn FnMut(Duration),
) -> Result<Vec<Posted>, RunError> {
    let total = scenario.injects.len();
    writeln!(
        out,
        "drill {} v{} · {} / {}",
        scenario.id, scenario.version, scenario.title.zh, scenario.title.en
    )?;
    writeln!(
        out,
        "exercise {} · {total} inject(s) over {} · speed {}×",
        options.exercise_id,
        scenario.duration(),
        options.speed
    )?;
    out.flush()?;
    let start = Instant::now();
    let mut posted: Vec<Posted> = Vec::with_capacity(total);
    for (index, inject) in scenario.injects.iter().enumerate() {
        let n = index + 1;
        let due = inject.at.scaled(options.speed);
        if let Some(wait) = due.checked_sub(start.elapsed())
            && !wait.is_zero()
        {
            sleep(wait);
        }
        let id = alert_id(&options.exercise_id, n);
        let now = Utc::now().with_timezone(&Local).fixed_offset();
        // Built once: every retry re-posts exactly this body, so a post that
        // did arrive before its answer was lost comes back as a duplicate.
        let alert = scenario.alert(index, id.clone(), &options.exercise_id, now, options.speed);
        let mut attempts = 0;
        let mut backoff = options.first_backoff;
        let delivered = loop {
            attempts += 1;
            match relay.post(&alert) {
                Ok(d) => break d,
                Err(PostError::Refused(reason)) => {
                    return Err(RunError::Refused {
                        n,
                        inject: inject.name.clone(),
                        reason,
                        delivered: posted.len(),
                    });
                }
                Err(PostError::Transient(reason)) if attempts > options.retries => {
                    return Err(RunError::Undelivered {
                        n,
                        inject: inject.name.clone(),
                        attempts,
                        reason,
                        delivered: posted.len(),
                    });
                }
                Err(PostError::Transient(reason)) => {
                    writeln!(
                        out,
                        "  #{n} {}: {reason}; retrying in {:.1}s",
                        inject.name,
                        backoff.as_secs_f64()
                    )?;
                    out.flush()?;
                    sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        writeln!(
            out,
            "T+{:<6} #{n}/{total} {} seq {:<6} case {}{}",
            inject.at.to_string(),
            crate::text::pad(&crate::text::inert(&inject.name), 24),
            delivered.seq,
            delivered.case_id,
            if delivered.duplicate {
                " (already stored)"
            } else {
                ""
            }
        )?;
        out.flush()?;
        posted.push(Posted {
            n,
            inject: inject.name.clone(),
            alert_id: id,
            seq: delivered.seq,
            case_id: delivered.case_id,
            duplicate: delivered.duplicate,
            attempts,
        });
    }
    let mut cases: Vec<&str> = posted.iter().map(|p| p.case_id.as_str()).collect();
    cases.sort_unstable();
    cases.dedup();
    writeln!(
        out,
        "drill {}: {} of {total} inject(s) delivered; case(s) {}",
        options.exercise_id,
        posted.len(),
        cases.join(", ")
    )?;
    Ok(posted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::format;

    fn scenario() -> Scenario {
        let library = crate::playbook::shipped::load(None).unwrap();
        let text = r#"
id = "t"
version = 1
title.zh = "测试"
title.en = "Test"
briefing.zh = "测试"
briefing.en = "Test"

[[students]]
id = "DRILL-T1"

[[injects]]
name = "second"
at = "2m"
source = "manual"
category = "suicide_risk"
level = "high"
student = "DRILL-T1"

[[injects]]
name = "first"
at = "0m"
source = "treehole"
category = "suicide_risk"
level = "key"
student = "DRILL-T1"
"#;
        format::parse(std::path::Path::new("t.toml"), text, &library).unwrap()
    }

    /// Fails each post a scripted number of times, then stores it.
    struct Flaky {
        failures: Vec<Result<(), PostError>>,
        seen: Vec<Alert>,
    }

    impl Deliver for Flaky {
        fn post(&mut self, alert: &Alert) -> Result<Delivered, PostError> {
            self.seen.push(alert.clone());
            if let Some(Err(e)) = (!self.failures.is_empty()).then(|| self.failures.remove(0)) {
                return Err(e);
            }
            let duplicate = self.seen[..self.seen.len() - 1]
                .iter()
                .any(|a| a.id == alert.id);
            Ok(Delivered {
                seq: self.seen.len() as i64,
                case_id: "C000001".into(),
                duplicate,
            })
        }
    }

    fn options() -> RunOptions {
        RunOptions {
            speed: MAX_SPEED,
            retries: 3,
            first_backoff: Duration::from_millis(100),
            ..RunOptions::new("ex-1".into())
        }
    }

    #[test]
    fn retries_resend_the_same_alert_with_growing_backoff() {
        let mut relay = Flaky {
            failures: vec![
                Err(PostError::Transient("connection refused".into())),
                Err(PostError::Transient("HTTP 503".into())),
            ],
            seen: Vec::new(),
        };
        let mut waits = Vec::new();
        let mut out = Vec::new();
        let posted = play(&scenario(), &options(), &mut relay, &mut out, &mut |d| {
            waits.push(d)
        })
        .unwrap();
        assert_eq!(posted.len(), 2);
        assert_eq!(posted[0].attempts, 3);
        assert_eq!(posted[0].inject, "first", "timeline order, not file order");
        assert_eq!(posted[0].alert_id, "ex-1-1");
        assert_eq!(
            relay.seen[0], relay.seen[1],
            "a retry re-sends the same body"
        );
        assert_eq!(relay.seen[1], relay.seen[2]);
        let backoffs: Vec<_> = waits
            .iter()
            .filter(|d| **d >= Duration::from_millis(100))
            .collect();
        assert_eq!(
            backoffs,
            [&Duration::from_millis(100), &Duration::from_millis(200)]
        );
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("retrying in 0.1s"), "{out}");
        assert!(out.contains("2 of 2 inject(s) delivered"), "{out}");
    }

    #[test]
    fn gives_up_naming_the_inject_after_the_last_retry() {
        let mut relay = Flaky {
            failures: (0..10)
                .map(|_| Err(PostError::Transient("connection refused".into())))
                .collect(),
            seen: Vec::new(),
        };
        let err = play(
            &scenario(),
            &options(),
            &mut relay,
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(relay.seen.len(), 4, "one attempt and three retries");
        let message = err.to_string();
        assert!(
            message.starts_with("inject #1 `first` could not be delivered after 4 attempt(s)"),
            "{message}"
        );
    }

    #[test]
    fn a_refusal_is_not_retried() {
        let mut relay = Flaky {
            failures: vec![Err(PostError::Refused("HTTP 401".into()))],
            seen: Vec::new(),
        };
        let err = play(
            &scenario(),
            &options(),
            &mut relay,
            &mut Vec::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(relay.seen.len(), 1);
        assert!(matches!(err, RunError::Refused { n: 1, .. }), "{err}");
    }

    #[test]
    fn progress_lines_never_carry_names_or_summaries() {
        let mut s = scenario();
        s.injects[0].student.name = Some("林语晨".into());
        s.injects[0].summary = Some("树洞帖原文".into());
        let mut relay = Flaky {
            failures: Vec::new(),
            seen: Vec::new(),
        };
        let mut out = Vec::new();
        play(&s, &options(), &mut relay, &mut out, &mut |_| {}).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            !out.contains("林语晨") && !out.contains("树洞帖原文"),
            "{out}"
        );
        assert!(out.contains("#1/2 first"), "{out}");
        assert!(out.contains("case C000001"), "{out}");
    }

    #[test]
    fn exercise_ids_and_speeds_are_checked() {
        assert!(check_exercise_id("night-1").is_ok());
        assert!(check_exercise_id("").is_err());
        assert!(check_exercise_id("a b").is_err());
        assert!(check_exercise_id(&"x".repeat(101)).is_err());
        assert!(check_speed(60.0).is_ok());
        assert!(check_speed(0.0).is_err());
        assert!(check_speed(f64::NAN).is_err());
        assert!(check_speed(1e9).is_err());
    }
}
