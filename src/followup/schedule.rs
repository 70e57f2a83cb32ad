//! Follow-up schedules (跟踪回访) as data: which check-ins a case in
//! monitoring gets, by its level, who makes them and whom a missed one
//! escalates to. The shipped schedule is `schedules/followup.toml`
//! (compiled in); `crisisdesk schedule check FILE` validates another.
//! Generation is pure: a schedule, a grade, a start and a school calendar
//! give the same dates every time.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};
use serde::Deserialize;

use super::calendar::Calendar;
use crate::lifecycle::Grade;
use crate::protocol::{Level, Role};

/// The shipped schedule.
pub const SHIPPED: &str = include_str!("../../schedules/followup.toml");

/// Most check-ins one plan may generate: a typo such as `every = "1
/// school_day"` for a year is refused rather than flooding a head teacher.
pub const MAX_CHECKINS: usize = 120;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    version: u32,
    #[serde(default = "default_due_hour")]
    due_hour: u32,
    #[serde(rename = "plan")]
    plans: Vec<PlanFile>,
}

fn default_due_hour() -> u32 {
    18
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    /// `high` (also any imminent case), `key` or `general`.
    grade: String,
    #[serde(rename = "phase")]
    phases: Vec<PhaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseFile {
    every: String,
    until: String,
    role: Role,
    #[serde(default)]
    escalate_to: Option<Role>,
}

/// How often a phase checks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    SchoolDays(u32),
    Weeks(u32),
    Months(u32),
    /// At each term's screening (the calendar's screening day).
    TermScreening,
}

/// How long after the start of monitoring a phase lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    SchoolDays(u32),
    Days(u32),
    Weeks(u32),
    Months(u32),
}

impl Until {
    fn after(self, start: NaiveDate, calendar: &Calendar) -> Option<NaiveDate> {
        match self {
            Until::SchoolDays(n) => calendar.add_school_days(start, n),
            Until::Days(n) => start.checked_add_signed(Duration::days(i64::from(n))),
            Until::Weeks(n) => start.checked_add_signed(Duration::weeks(i64::from(n))),
            Until::Months(n) => start.checked_add_months(Months::new(n)),
        }
    }

    /// Rough length in days, to compare with an interval.
    fn days(self) -> u32 {
        match self {
            Until::SchoolDays(n) | Until::Days(n) => n,
            Until::Weeks(n) => n * 7,
            Until::Months(n) => n * 28,
        }
    }
}

impl Every {
    /// Shortest calendar days one interval takes.
    fn min_days(self) -> u32 {
        match self {
            Every::SchoolDays(n) => n,
            Every::Weeks(n) => n * 7,
            Every::Months(n) => n * 28,
            Every::TermScreening => 0,
        }
    }
}

fn count_unit(text: &str) -> Option<(u32, &str)> {
    let mut parts = text.split_whitespace();
    let n: u32 = parts.next()?.parse().ok()?;
    let unit = parts.next()?;
    parts.next().is_none().then_some((n, unit))
}

fn parse_every(text: &str) -> Result<Every, String> {
    if text.trim() == "term_screening" {
        return Ok(Every::TermScreening);
    }
    let bad = || {
        format!(
            "`every = \"{text}\"` is not an interval; write e.g. \"1 school_day\", \"1 week\", \"1 month\" or \"term_screening\""
        )
    };
    let (n, unit) = count_unit(text).ok_or_else(bad)?;
    if n == 0 {
        return Err(format!(
            "`every = \"{text}\"`: an interval must be at least 1"
        ));
    }
    match unit {
        "school_day" | "school_days" => Ok(Every::SchoolDays(n)),
        "week" | "weeks" => Ok(Every::Weeks(n)),
        "month" | "months" => Ok(Every::Months(n)),
        _ => Err(bad()),
    }
}

fn parse_until(text: &str) -> Result<Until, String> {
    let bad = || {
        format!(
            "`until = \"{text}\"` is not a span; write e.g. \"1 week\", \"4 weeks\", \"6 months\""
        )
    };
    let (n, unit) = count_unit(text).ok_or_else(bad)?;
    if n == 0 {
        return Err(format!("`until = \"{text}\"` must be longer than nothing"));
    }
    match unit {
        "school_day" | "school_days" => Ok(Until::SchoolDays(n)),
        "day" | "days" => Ok(Until::Days(n)),
        "week" | "weeks" => Ok(Until::Weeks(n)),
        "month" | "months" => Ok(Until::Months(n)),
        _ => Err(bad()),
    }
}

/// One phase of a plan, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    pub every: Every,
    pub until: Until,
    pub role: Role,
    pub escalate_to: Role,
}

/// A checked schedule: one plan per level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub due_hour: u32,
    high: Vec<Phase>,
    key: Vec<Phase>,
    general: Vec<Phase>,
}

/// One check-in the schedule calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub role: Role,
    pub escalate_to: Role,
    pub due_on: NaiveDate,
    pub due_at: DateTime<Utc>,
}

/// Who hears of a missed check-in when the schedule does not say: the
/// counselor, or the leader when the counselor missed it.
fn default_escalation(role: Role) -> Role {
    if role == Role::Counselor {
        Role::Leader
    } else {
        Role::Counselor
    }
}

impl Schedule {
    /// The shipped schedule (checked by the tests, so this cannot fail in
    /// a released binary; the error is kept for an honest signature).
    pub fn shipped() -> Result<Schedule, Vec<String>> {
        Schedule::parse(SHIPPED)
    }

    /// Parses and checks a schedule; every problem is named.
    pub fn parse(text: &str) -> Result<Schedule, Vec<String>> {
        let file: ScheduleFile = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        if file.version != 1 {
            problems.push(format!(
                "`version = {}`: only version 1 is known",
                file.version
            ));
        }
        if file.due_hour > 23 {
            problems.push(format!("`due_hour = {}` must be 0 to 23", file.due_hour));
        }
        let mut plans: [Option<Vec<Phase>>; 3] = [None, None, None];
        for plan in &file.plans {
            let slot = match plan.grade.as_str() {
                "high" => 0,
                "key" => 1,
                "general" => 2,
                other => {
                    problems.push(format!(
                        "plan for `{other}`: grade must be high, key or general"
                    ));
                    continue;
                }
            };
            if plans[slot].is_some() {
                problems.push(format!("there are two plans for `{}`", plan.grade));
                continue;
            }
            let mut phases = Vec::new();
            let mut last_until: u32 = 0;
            for (i, p) in plan.phases.iter().enumerate() {
                let at = format!("plan `{}`, phase {}", plan.grade, i + 1);
                let (every, until) = match (parse_every(&p.every), parse_until(&p.until)) {
                    (Ok(e), Ok(u)) => (e, u),
                    (e, u) => {
                        for err in [e.err(), u.err()].into_iter().flatten() {
                            problems.push(format!("{at}: {err}"));
                        }
                        continue;
                    }
                };
                if until.days() <= last_until {
                    problems.push(format!(
                        "{at}: `until = \"{}\"` does not end after the phase before it",
                        p.until
                    ));
                } else if every.min_days() > until.days() - last_until {
                    problems.push(format!(
                        "{at}: `every = \"{}\"` is longer than the phase (to \"{}\"), so it would never check in",
                        p.every, p.until
                    ));
                }
                last_until = last_until.max(until.days());
                for (what, role) in [("role", Some(p.role)), ("escalate_to", p.escalate_to)] {
                    if let Some(role) = role
                        && !role.can_act()
                    {
                        problems.push(format!(
                            "{at}: `{what} = \"{role}\"` is not a role that acts on cases"
                        ));
                    }
                }
                phases.push(Phase {
                    every,
                    until,
                    role: p.role,
                    escalate_to: p.escalate_to.unwrap_or_else(|| default_escalation(p.role)),
                });
            }
            if plan.phases.is_empty() {
                problems.push(format!("plan `{}` has no phase", plan.grade));
            }
            plans[slot] = Some(phases);
        }
        for (slot, name) in ["high", "key", "general"].into_iter().enumerate() {
            if plans[slot].is_none() {
                problems.push(format!("there is no plan for `{name}`"));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let [high, key, general] = plans.map(Option::unwrap_or_default);
        let schedule = Schedule {
            due_hour: file.due_hour,
            high,
            key,
            general,
        };
        // A plan that runs away (a daily phase for a year) is refused here,
        // against the fallback calendar, not discovered on a live case.
        for grade in [
            Grade {
                level: Level::High,
                imminent: false,
            },
            Grade {
                level: Level::Key,
                imminent: false,
            },
            Grade {
                level: Level::General,
                imminent: false,
            },
        ] {
            let n = schedule
                .plan(grade, DateTime::<Utc>::UNIX_EPOCH, &Calendar::fallback())
                .len();
            if n > MAX_CHECKINS {
                return Err(vec![format!(
                    "plan `{}` makes {n} check-ins; at most {MAX_CHECKINS} are allowed",
                    grade.level.as_str()
                )]);
            }
        }
        Ok(schedule)
    }

    fn phases(&self, grade: Grade) -> &[Phase] {
        match (grade.level, grade.imminent) {
            (Level::High, _) | (_, true) => &self.high,
            (Level::Key, false) => &self.key,
            (Level::General, false) => &self.general,
        }
    }

    /// The check-ins for a case at `grade` whose monitoring starts at
    /// `start`, on `calendar`'s school days. A check-in is due at
    /// `due_hour` local time of its school day; the first is the next
    /// school day after the start (a case moved to monitoring on a Friday
    /// is first seen on Monday).
    pub fn plan(&self, grade: Grade, start: DateTime<Utc>, calendar: &Calendar) -> Vec<Planned> {
        let start_day = start.with_timezone(&calendar.offset).date_naive();
        let mut out = Vec::new();
        let mut prev = start_day;
        for phase in self.phases(grade) {
            let Some(end) = phase.until.after(start_day, calendar) else {
                break;
            };
            let push = |day: NaiveDate, out: &mut Vec<Planned>| {
                if let Some(due_at) = day
                    .and_hms_opt(self.due_hour, 0, 0)
                    .and_then(|t| t.and_local_timezone(calendar.offset).single())
                {
                    out.push(Planned {
                        role: phase.role,
                        escalate_to: phase.escalate_to,
                        due_on: day,
                        due_at: due_at.with_timezone(&Utc),
                    });
                }
            };
            if phase.every == Every::TermScreening {
                for day in screenings(calendar, prev, end) {
                    push(day, &mut out);
                    prev = day;
                }
                continue;
            }
            while out.len() <= MAX_CHECKINS {
                let next = match phase.every {
                    Every::SchoolDays(n) => calendar.add_school_days(prev, n),
                    Every::Weeks(n) => prev
                        .checked_add_signed(Duration::weeks(i64::from(n)))
                        .and_then(|d| calendar.on_or_after(d)),
                    Every::Months(n) => prev
                        .checked_add_months(Months::new(n))
                        .and_then(|d| calendar.on_or_after(d)),
                    Every::TermScreening => None,
                };
                match next {
                    Some(day) if day <= end => {
                        push(day, &mut out);
                        prev = day;
                    }
                    _ => break,
                }
            }
        }
        out
    }
}

/// Term screening days in `(from, to]`; a calendar without terms uses the
/// first school day on or after 1 March and 1 September (the usual term
/// starts), see docs/followup.md.
fn screenings(calendar: &Calendar, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    if !calendar.terms.is_empty() {
        return calendar.screenings(from, to);
    }
    use chrono::Datelike;
    let mut days = Vec::new();
    for year in from.year()..=to.year() {
        for month in [3, 9] {
            if let Some(day) =
                NaiveDate::from_ymd_opt(year, month, 1).and_then(|d| calendar.on_or_after(d))
                && day > from
                && day <= to
            {
                days.push(day);
            }
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// 20:00 local (+08:00) on `day`: after the school day's due hour.
    fn evening(day: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T20:00:00+08:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn calendar() -> Calendar {
        Calendar::parse(include_str!("../../calendars/example.toml")).unwrap()
    }

    fn high() -> Grade {
        Grade {
            level: Level::High,
            imminent: false,
        }
    }

    #[test]
    fn the_shipped_schedule_is_valid() {
        Schedule::shipped().unwrap();
    }

    #[test]
    fn high_is_daily_for_a_week_then_weekly_to_week_four_then_monthly() {
        let s = Schedule::shipped().unwrap();
        // Monday 2026-11-09 in term, no holidays for a month.
        let plan = s.plan(high(), evening("2026-11-09"), &calendar());
        let days: Vec<String> = plan.iter().map(|p| p.due_on.to_string()).collect();
        assert_eq!(
            &days[..8],
            [
                "2026-11-10",
                "2026-11-11",
                "2026-11-12",
                "2026-11-13",
                "2026-11-16",
                "2026-11-23",
                "2026-11-30",
                "2026-12-07"
            ],
            "{days:?}"
        );
        assert_eq!(plan[0].role, Role::HeadTeacher);
        assert_eq!(
            plan[5].role,
            Role::Counselor,
            "weekly reviews are the counselor's"
        );
        assert_eq!(
            plan[0].due_at,
            DateTime::parse_from_rfc3339("2026-11-10T18:00:00+08:00").unwrap()
        );
        // Then monthly: 2027-01-07, then the winter break moves February's
        // to the first day of the spring term.
        assert!(days.contains(&"2027-01-07".to_string()), "{days:?}");
        assert!(days.contains(&"2027-02-22".to_string()), "{days:?}");
        assert!(
            !days
                .iter()
                .any(|d| d.as_str() > "2027-01-22" && d.as_str() < "2027-02-22"),
            "nothing in the break: {days:?}"
        );
    }

    #[test]
    fn a_case_opened_on_a_friday_is_first_seen_on_monday() {
        let s = Schedule::shipped().unwrap();
        let plan = s.plan(high(), evening("2026-11-13"), &calendar());
        assert_eq!(plan[0].due_on, d("2026-11-16"));
        let fallback = s.plan(high(), evening("2026-11-13"), &Calendar::fallback());
        assert_eq!(
            fallback[0].due_on,
            d("2026-11-16"),
            "the Mon–Fri fallback agrees"
        );
    }

    #[test]
    fn a_holiday_week_is_skipped() {
        let s = Schedule::shipped().unwrap();
        // Tuesday 29 September: 国庆 closes 1–7 October, the 10th is a make-up day.
        let plan = s.plan(high(), evening("2026-09-29"), &calendar());
        let days: Vec<String> = plan.iter().take(5).map(|p| p.due_on.to_string()).collect();
        assert_eq!(
            days,
            [
                "2026-09-30",
                "2026-10-08",
                "2026-10-09",
                "2026-10-10",
                "2026-10-12"
            ]
        );
    }

    #[test]
    fn key_is_monthly_and_general_follows_term_screenings() {
        let s = Schedule::shipped().unwrap();
        let key = Grade {
            level: Level::Key,
            imminent: false,
        };
        let plan = s.plan(key, evening("2026-09-09"), &calendar());
        assert_eq!(
            plan[0].due_on,
            d("2026-10-09"),
            "a month on; the 9th is open"
        );
        assert!(plan.iter().all(|p| p.role == Role::HeadTeacher));
        let general = Grade {
            level: Level::General,
            imminent: false,
        };
        let plan = s.plan(general, evening("2026-09-09"), &calendar());
        let days: Vec<NaiveDate> = plan.iter().map(|p| p.due_on).collect();
        assert_eq!(days, [d("2026-09-21"), d("2027-02-22")]);
        let imminent_key = Grade {
            level: Level::Key,
            imminent: true,
        };
        assert_eq!(
            s.plan(imminent_key, evening("2026-11-09"), &calendar())[0].due_on,
            d("2026-11-10")
        );
    }

    #[test]
    fn bad_intervals_are_named() {
        let text = r#"
version = 1
[[plan]]
grade = "high"
[[plan.phase]]
every = "0 week"
until = "1 week"
role = "head_teacher"
[[plan.phase]]
every = "2 fortnights"
until = "4 weeks"
role = "counselor"
[[plan]]
grade = "key"
[[plan.phase]]
every = "1 month"
until = "2 weeks"
role = "reviewer"
"#;
        let problems = Schedule::parse(text).unwrap_err();
        let all = problems.join("\n");
        assert!(
            all.contains("phase 1: `every = \"0 week\"`: an interval must be at least 1"),
            "{all}"
        );
        assert!(
            all.contains("`every = \"2 fortnights\"` is not an interval"),
            "{all}"
        );
        assert!(all.contains("longer than the phase"), "{all}");
        assert!(
            all.contains("`role = \"reviewer\"` is not a role that acts"),
            "{all}"
        );
        assert!(all.contains("no plan for `general`"), "{all}");
    }
}
