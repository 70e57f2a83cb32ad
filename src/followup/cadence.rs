//! The 三个一 cadence as a schedule the console shows: the yearly
//! new-student census (新生普查), the per-term screening (每学期一次筛查)
//! and the monthly review of the students under 特别关注 (每月一次).
//!
//! The dates come from the school calendars (`calendar load`): the next
//! term screening is the soonest screening day any school's calendar has
//! from today; the census is the screening of the first autumn term (a
//! term starting July to October: a new school year). Without calendars
//! the fallback of [`Calendar`] answers: the first school day on or after
//! 1 March and 1 September, and 1 September for the census.
//!
//! The monthly figure counts students, not cases: those with an open real
//! case at `key` or `high` (or imminent), and of them those with no
//! check-in recorded since the month began (school time, +08:00) — the
//! ones "due for review this month". The relay computes it when a console
//! connects ([`crate::protocol::Session::followup_cadence`]).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cadence {
    /// When the figures were read.
    pub as_of: DateTime<Utc>,
    /// The month of the review, school time: `2026-12`.
    pub month: String,
    /// Students under 特别关注: an open real case at key or high, or imminent.
    pub review_students: u32,
    /// Of them, those with no check-in recorded this month yet.
    pub review_due: u32,
    /// The next per-term screening day, today included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_term_screening: Option<NaiveDate>,
    /// The next yearly new-student census, today included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_census: Option<NaiveDate>,
    /// How many schools have a calendar loaded (0: the fallback's dates).
    pub calendars: u32,
}

/// Whether a term starting on `start` opens a school year.
fn opens_school_year(start: NaiveDate) -> bool {
    (7..=10).contains(&start.month())
}

/// The next term screening and census on or after `today`, from the
/// calendars that have terms; the fallback's where none has a date.
pub fn next_dates(
    calendars: &[Calendar],
    today: NaiveDate,
) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let mut term: Option<NaiveDate> = None;
    let mut census: Option<NaiveDate> = None;
    for cal in calendars {
        for t in &cal.terms {
            let Some(day) = t.screening.or_else(|| cal.on_or_after(t.start)) else {
                continue;
            };
            if day < today {
                continue;
            }
            term = Some(term.map_or(day, |d| d.min(day)));
            if opens_school_year(t.start) {
                census = Some(census.map_or(day, |d| d.min(day)));
            }
        }
    }
    let fallback = Calendar::fallback();
    let first_on_or_after = |month: u32| {
        [today.year(), today.year() + 1]
            .into_iter()
            .filter_map(|y| NaiveDate::from_ymd_opt(y, month, 1))
            .filter_map(|d| fallback.on_or_after(d))
            .find(|d| *d >= today)
    };
    let term = term.or_else(|| {
        [first_on_or_after(3), first_on_or_after(9)]
            .into_iter()
            .flatten()
            .min()
    });
    let census = census.or_else(|| first_on_or_after(9));
    (term, census)
}

/// The first instant of `now`'s month at `calendar`'s offset, and the
/// month as `YYYY-MM`.
pub fn month_start(now: DateTime<Utc>, calendar: &Calendar) -> (DateTime<Utc>, String) {
    let local = now.with_timezone(&calendar.offset).date_naive();
    let first = local.with_day(1).unwrap_or(local);
    let start = first
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(calendar.offset).single())
        .map_or(now - Duration::days(31), |t| t.with_timezone(&Utc));
    (start, first.format("%Y-%m").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const TWO_TERMS: &str = r#"
school = "一中"
[[term]]
name = "秋"
start = 2026-09-01
end = 2027-01-22
screening = 2026-09-21
[[term]]
name = "春"
start = 2027-02-22
end = 2027-07-02
[[term]]
name = "下一年秋"
start = 2027-09-01
end = 2028-01-20
screening = 2027-09-13
"#;

    #[test]
    fn dates_come_from_the_calendars() {
        let cal = Calendar::parse(TWO_TERMS).unwrap();
        // Mid-autumn term: the spring term's first school day is next,
        // the census is next school year's autumn screening.
        let (term, census) = next_dates(std::slice::from_ref(&cal), d("2026-12-02"));
        assert_eq!(term, Some(d("2027-02-22")));
        assert_eq!(census, Some(d("2027-09-13")));
        // On the screening day itself, it is today's.
        let (term, census) = next_dates(&[cal], d("2026-09-21"));
        assert_eq!(term, Some(d("2026-09-21")));
        assert_eq!(census, Some(d("2026-09-21")));
    }

    #[test]
    fn without_calendars_the_fallback_answers() {
        // 2027-03-01 is a Monday; 2026-09-01 a Tuesday.
        let (term, census) = next_dates(&[], d("2026-12-02"));
        assert_eq!(term, Some(d("2027-03-01")));
        assert_eq!(census, Some(d("2027-09-01")));
        let (term, census) = next_dates(&[], d("2026-08-20"));
        assert_eq!(term, Some(d("2026-09-01")));
        assert_eq!(census, Some(d("2026-09-01")));
    }

    #[test]
    fn the_month_is_school_time() {
        let cal = Calendar::fallback();
        // 2026-11-30 17:00 UTC is already 1 December in Beijing.
        let now = DateTime::parse_from_rfc3339("2026-11-30T17:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (start, month) = month_start(now, &cal);
        assert_eq!(month, "2026-12");
        assert_eq!(start.to_rfc3339(), "2026-11-30T16:00:00+00:00");
    }
}
