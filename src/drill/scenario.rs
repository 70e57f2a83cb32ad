//! The checked, in-memory form of a drill scenario, and the alerts it
//! turns into. Only `format` builds a [`Scenario`] from TOML, after every
//! rule in `docs/drills.md` has passed, so the runner and the demo can rely
//! on unique inject names, known playbook steps and valid alerts.

use std::fmt;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::playbook::{Interval, Text};
use crate::protocol::{Alert, AlertStatus, Category, Level, Source, Student};

/// The `kind` of the signal every drill alert carries, naming the scenario
/// and inject it came from, so a review can find a drill's `[[expect]]`
/// entries from the relay's database alone (see [`DrillMark`]).
pub const DRILL_SIGNAL_KIND: &str = "drill";

/// Prefix every drill student id must carry, so a drill can never be taken
/// for (or aimed at) a real student's record.
pub const DRILL_STUDENT_PREFIX: &str = "DRILL-";

/// The longest a scenario may run. A drill is an exercise of one shift;
/// anything beyond a day is almost surely a typo (`30h` for `30m`).
pub const MAX_OFFSET_SECONDS: i64 = 24 * 3600;

/// When an inject happens, counted from the start of the drill. Unlike a
/// playbook [`Interval`], zero is allowed: the opening inject is `at = "0m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    seconds: i64,
}

impl Offset {
    pub const ZERO: Offset = Offset { seconds: 0 };

    pub fn from_seconds(seconds: i64) -> Option<Offset> {
        (0..=MAX_OFFSET_SECONDS)
            .contains(&seconds)
            .then_some(Offset { seconds })
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    /// Wall-clock time from the start of a run played `speed` times faster
    /// than real time (`speed` 60: a scenario minute per second).
    pub fn scaled(self, speed: f64) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.seconds as f64 / speed)
    }

    /// `0m`, or anything [`Interval::parse`] accepts, up to a day.
    pub fn parse(text: &str) -> Result<Offset, String> {
        let all_zero = text.chars().any(|c| c.is_ascii_digit())
            && text.chars().filter(char::is_ascii_digit).all(|c| c == '0');
        // Intervals refuse zero; an offset may be zero. Its spelling is
        // checked as the same text with a non-zero number would be.
        if all_zero {
            let spelled = text.replacen('0', "1", 1);
            return match Interval::parse(&spelled) {
                Ok(_) => Ok(Offset::ZERO),
                Err(_) => Interval::parse(text).map(|_| Offset::ZERO),
            };
        }
        let interval = Interval::parse(text)?;
        Offset::from_seconds(interval.seconds()).ok_or_else(|| {
            "is later than 24h; a drill runs within one day (check for a typo)".to_string()
        })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Interval::from_seconds(self.seconds) {
            Some(i) => write!(f, "{i}"),
            None => f.write_str("0m"),
        }
    }
}

impl Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One timed event of a drill: an alert as a producer would post it, minus
/// what `drill run` fills in (`id`, `status`, `exercise_id`, `observed_at`).
/// Scripted developments ("the guardian is unreachable") are injects too: a
/// follow-up alert for the same student whose summary states what happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inject {
    /// Unique within the scenario; names the inject in output and in
    /// `[[expect]]` (never a student's name).
    pub name: String,
    pub at: Offset,
    /// How long before it reaches the relay the event was observed (a
    /// screening taken yesterday: `1d`). `None`: observed as it is posted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_before: Option<Interval>,
    pub source: Source,
    pub category: Category,
    pub level: Level,
    pub imminent: bool,
    pub student: Student,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Value>,
    /// The line of its `[[injects]]` table, for messages about it.
    #[serde(skip)]
    pub line: usize,
}

/// What the team should achieve: a playbook step done within a time of an
/// inject's arrival at the relay. Times are real time whatever `--speed`
/// the timeline was played at: speed compresses the scenario, not people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expect {
    /// The inject whose case this concerns (the first inject by default).
    pub inject: String,
    pub playbook: String,
    pub step: String,
    pub within: Interval,
    #[serde(skip)]
    pub line: usize,
}

impl Expect {
    /// When the step is due, given when the inject's alert was received.
    pub fn deadline(&self, received_at: DateTime<Utc>) -> DateTime<Utc> {
        received_at + self.within.to_chrono()
    }
}

/// A checked scenario. `injects` are in timeline order (by `at`, then file
/// order), which is also the order `drill run` posts them in and the `n`
/// of their alert ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub id: String,
    pub version: u32,
    pub title: Text,
    pub briefing: Text,
    pub injects: Vec<Inject>,
    pub expects: Vec<Expect>,
}

/// Read back from a stored drill alert: which scenario and inject made it.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillMark {
    pub scenario: String,
    pub scenario_version: u32,
    pub inject: String,
    /// How much faster than real time the timeline was played.
    pub speed: f64,
}

impl DrillMark {
    /// The drill signal of an alert, if it has one.
    pub fn of(alert: &Alert) -> Option<DrillMark> {
        alert.signals.iter().find_map(|s| {
            if s.get("kind")?.as_str()? != DRILL_SIGNAL_KIND {
                return None;
            }
            Some(DrillMark {
                scenario: s.get("scenario")?.as_str()?.to_string(),
                scenario_version: s
                    .get("version")
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(1),
                inject: s.get("inject")?.as_str()?.to_string(),
                speed: s.get("speed").and_then(Value::as_f64).unwrap_or(1.0),
            })
        })
    }
}

/// A stored drill alert as a review reads it from the relay's database.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub alert: &'a Alert,
    pub case_id: &'a str,
    pub received_at: DateTime<Utc>,
}

/// One `[[expect]]` resolved against what the relay received: the case it
/// concerns and when the step is due. `None` for both when the inject's
/// alert never arrived (a run that stopped early).
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub expect: &'a Expect,
    pub case_id: Option<String>,
    pub due: Option<DateTime<Utc>>,
}

/// The id `drill run` gives the `n`th inject (1-based, timeline order).
pub fn alert_id(exercise_id: &str, n: usize) -> String {
    format!("{exercise_id}-{n}")
}

/// The exercise id `drill run` uses when none is given:
/// `<scenario id>-<UTC timestamp>`, e.g. `night_treehole-20261122T154000Z`.
pub fn default_exercise_id(scenario_id: &str, now: DateTime<Utc>) -> String {
    format!("{scenario_id}-{}", now.format("%Y%m%dT%H%M%SZ"))
}

impl Scenario {
    /// The inject with this name and its index in the timeline.
    pub fn inject(&self, name: &str) -> Option<(usize, &Inject)> {
        self.injects
            .iter()
            .enumerate()
            .find(|(_, i)| i.name == name)
    }

    /// Resolves every `[[expect]]` against the alerts of one exercise: the
    /// alert whose drill mark names this scenario and the expect's inject
    /// gives the case and the start of the clock. What remains for a scorer
    /// is when `expect.step` of that case's `expect.playbook` was done.
    pub fn targets<'a>(&'a self, received: &[Received<'_>]) -> Vec<Target<'a>> {
        self.expects
            .iter()
            .map(|expect| {
                let arrival = received
                    .iter()
                    .filter(|r| {
                        DrillMark::of(r.alert)
                            .is_some_and(|m| m.scenario == self.id && m.inject == expect.inject)
                    })
                    .min_by_key(|r| r.received_at);
                Target {
                    expect,
                    case_id: arrival.map(|r| r.case_id.to_string()),
                    due: arrival.map(|r| expect.deadline(r.received_at)),
                }
            })
            .collect()
    }

    /// How long the timeline runs (the last inject's offset).
    pub fn duration(&self) -> Offset {
        self.injects.last().map_or(Offset::ZERO, |i| i.at)
    }

    /// The alert for inject `index`, marked as a drill: `status: exercise`,
    /// the exercise id, and a drill signal naming scenario and inject.
    /// `now` is when it is posted; `observed_at` is `now` less the inject's
    /// `observed_before`, in `now`'s offset.
    pub fn alert(
        &self,
        index: usize,
        id: String,
        exercise_id: &str,
        now: DateTime<FixedOffset>,
        speed: f64,
    ) -> Alert {
        let inject = &self.injects[index];
        let observed_at = now
            - inject
                .observed_before
                .map_or(TimeDelta::zero(), Interval::to_chrono);
        let mut signals = inject.signals.clone();
        signals.push(json!({
            "kind": DRILL_SIGNAL_KIND,
            "scenario": self.id,
            "version": self.version,
            "inject": inject.name,
            "at": inject.at.to_string(),
            "speed": speed_json(speed),
        }));
        Alert {
            id,
            status: AlertStatus::Exercise,
            exercise_id: Some(exercise_id.to_string()),
            source: inject.source,
            category: inject.category,
            level: inject.level,
            imminent: inject.imminent,
            student: inject.student.clone(),
            summary: inject.summary.clone(),
            signals,
            observed_at,
            route: Default::default(),
        }
    }
}

/// `60`, not `60.0`, when the speed is whole: it reads better where a
/// console lists an alert's signals.
fn speed_json(speed: f64) -> Value {
    if speed.fract() == 0.0 && speed.abs() < 1e15 {
        Value::from(speed as i64)
    } else {
        Value::from(speed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_allow_zero_and_refuse_more_than_a_day() {
        assert_eq!(Offset::parse("0m"), Ok(Offset::ZERO));
        assert_eq!(Offset::parse("0s"), Ok(Offset::ZERO));
        assert_eq!(Offset::parse("3m").unwrap().seconds(), 180);
        assert_eq!(Offset::parse("1h30m").unwrap().seconds(), 5400);
        assert_eq!(Offset::parse("24h").unwrap().seconds(), 86_400);
        assert!(Offset::parse("25h").unwrap_err().contains("24h"));
        assert!(Offset::parse("3").unwrap_err().contains("without a unit"));
        assert!(Offset::parse("3x").unwrap_err().contains("unknown unit"));
        assert_eq!(Offset::parse("0h0m"), Ok(Offset::ZERO));
        assert!(Offset::parse("0").unwrap_err().contains("without a unit"));
        assert_eq!(Offset::parse("6m").unwrap().to_string(), "6m");
        assert_eq!(Offset::ZERO.to_string(), "0m");
    }

    #[test]
    fn scaled_offsets_compress_the_timeline() {
        let six = Offset::parse("6m").unwrap();
        assert_eq!(six.scaled(60.0), std::time::Duration::from_secs(6));
        assert_eq!(six.scaled(1.0), std::time::Duration::from_secs(360));
    }

    #[test]
    fn expectations_resolve_to_the_case_and_deadline_of_their_inject() {
        let library = crate::playbook::shipped::load(None).unwrap();
        let night = crate::drill::find("night_treehole_imminent", None, &library).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T23:40:00+08:00").unwrap();
        // Only the first two injects arrived, to case C000007.
        let alerts: Vec<Alert> = (0..2)
            .map(|i| night.alert(i, alert_id("ex", i + 1), "ex", t0, 60.0))
            .collect();
        let received: Vec<Received> = alerts
            .iter()
            .enumerate()
            .map(|(i, alert)| Received {
                alert,
                case_id: "C000007",
                received_at: t0.with_timezone(&Utc) + TimeDelta::seconds(3 * i as i64),
            })
            .collect();
        let targets = night.targets(&received);
        assert_eq!(targets.len(), night.expects.len());
        let counselor = targets
            .iter()
            .find(|t| t.expect.step == "counselor_arrives")
            .unwrap();
        assert_eq!(counselor.case_id.as_deref(), Some("C000007"));
        assert_eq!(
            counselor.due,
            Some(t0.with_timezone(&Utc) + TimeDelta::minutes(10))
        );
        let on_roof = targets
            .iter()
            .find(|t| t.expect.inject == "found_on_roof")
            .unwrap();
        assert_eq!((on_roof.case_id.as_deref(), on_roof.due), (None, None));
    }

    #[test]
    fn default_exercise_ids_carry_the_scenario_and_utc_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T15:40:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            default_exercise_id("night_treehole", now),
            "night_treehole-20261122T154005Z"
        );
        assert_eq!(alert_id("x-1", 3), "x-1-3");
    }
}
