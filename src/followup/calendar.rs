//! School calendars: terms, holidays and school days, so "1 school day"
//! means the next day the school is open, not 24 hours. A calendar is a
//! TOML file a school (or its district) edits; `crisisdesk calendar check`
//! validates it and `calendar load` stores it in the relay's database.
//!
//! Without a calendar, or past the last term a calendar knows, school
//! days are Monday to Friday ([`Calendar::fallback`]): a wrong guess costs
//! a check-in on a holiday, never a skipped week. See docs/followup.md.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Utc, Weekday,
};
use serde::{Deserialize, Serialize};

/// A calendar as written in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// The school as alerts and screening exports name it.
    pub school: String,
    /// The school's UTC offset, e.g. "+08:00" (default).
    #[serde(default = "default_offset")]
    pub utc_offset: String,
    /// Weekdays the school is open, e.g. ["mon", "tue", ...] (default Mon–Fri).
    #[serde(default)]
    pub weekdays: Option<Vec<String>>,
    #[serde(default, rename = "term")]
    pub terms: Vec<TermFile>,
    #[serde(default, rename = "holiday")]
    pub holidays: Vec<SpanFile>,
    /// Weekend days made school days (调休上课).
    #[serde(default)]
    pub make_up_days: Vec<Day>,
    /// When a school day ends, local time, e.g. "17:30" (default "18:00"):
    /// a playbook limit in school days falls due then.
    #[serde(default)]
    pub school_day_ends: Option<String>,
}

fn default_offset() -> String {
    "+08:00".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermFile {
    pub name: String,
    pub start: Day,
    /// Inclusive.
    pub end: Day,
    /// The day of the term's screening (心理普查); default its first school day.
    #[serde(default)]
    pub screening: Option<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanFile {
    pub name: String,
    pub start: Day,
    /// Inclusive.
    pub end: Day,
}

/// A date written either as a TOML date (`2026-09-01`) or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Day(pub NaiveDate);

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Date(toml::value::Datetime),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Date(dt) => dt.to_string(),
            Raw::Text(t) => t,
        };
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Day)
            .map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a date like 2026-09-01"))
            })
    }
}

/// A term as the rules use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub screening: Option<NaiveDate>,
}

/// A checked calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub school: Option<String>,
    pub offset: FixedOffset,
    weekdays: Vec<Weekday>,
    /// Sorted by start, not overlapping.
    pub terms: Vec<Term>,
    holidays: Vec<(NaiveDate, NaiveDate)>,
    make_up_days: Vec<NaiveDate>,
    /// When a school day ends, local time ([`DAY_ENDS`] unless the file
    /// says `school_day_ends`).
    pub day_ends: NaiveTime,
}

/// The end of a school day when the calendar does not say: 18:00 local,
/// the hour follow-up check-ins are due (`schedules/followup.toml`).
pub const DAY_ENDS: (u32, u32) = (18, 0);

fn default_day_ends() -> NaiveTime {
    NaiveTime::from_hms_opt(DAY_ENDS.0, DAY_ENDS.1, 0).unwrap_or(NaiveTime::MIN)
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

const MON_TO_FRI: [Weekday; 5] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
];

/// +08:00, the default offset of a calendar.
fn china_time() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

/// Longest a search for the next school day looks ahead: a summer break is
/// far shorter, so running out means the calendar has no more school days.
const SEARCH_DAYS: i64 = 400;

impl Calendar {
    /// The calendar of a school that has none: Monday to Friday, every
    /// week, at +08:00.
    pub fn fallback() -> Calendar {
        Calendar {
            school: None,
            offset: china_time(),
            weekdays: MON_TO_FRI.to_vec(),
            terms: Vec::new(),
            holidays: Vec::new(),
            make_up_days: Vec::new(),
            day_ends: default_day_ends(),
        }
    }

    /// Parses and checks a calendar file; every problem is named.
    pub fn parse(text: &str) -> Result<Calendar, Vec<String>> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        Calendar::check(&file)
    }

    pub fn check(file: &CalendarFile) -> Result<Calendar, Vec<String>> {
        let mut problems = Vec::new();
        if file.school.trim().is_empty() {
            problems.push("`school` must name the school".to_string());
        }
        let offset = crate::period::parse_offset(&file.utc_offset).unwrap_or_else(|| {
            problems.push(format!(
                "`utc_offset` `{}` is not an offset like +08:00",
                file.utc_offset
            ));
            Calendar::fallback().offset
        });
        let weekdays = match &file.weekdays {
            None => MON_TO_FRI.to_vec(),
            Some(names) => {
                let mut days = Vec::new();
                for name in names {
                    match WEEKDAYS.iter().find(|(n, _)| *n == name.to_lowercase()) {
                        Some((_, d)) if !days.contains(d) => days.push(*d),
                        Some(_) => problems.push(format!("weekday `{name}` is listed twice")),
                        None => problems.push(format!(
                            "unknown weekday `{name}`; use mon, tue, wed, thu, fri, sat, sun"
                        )),
                    }
                }
                if days.is_empty() {
                    problems.push("`weekdays` is empty: the school would never be open".into());
                }
                days
            }
        };
        let mut terms: Vec<Term> = Vec::new();
        for t in &file.terms {
            if t.end.0 < t.start.0 {
                problems.push(format!(
                    "term `{}` ends on {} before it starts on {}",
                    t.name, t.end.0, t.start.0
                ));
                continue;
            }
            if let Some(s) = t.screening
                && (s.0 < t.start.0 || s.0 > t.end.0)
            {
                problems.push(format!(
                    "term `{}`: screening day {} is outside the term ({} to {})",
                    t.name, s.0, t.start.0, t.end.0
                ));
            }
            terms.push(Term {
                name: t.name.clone(),
                start: t.start.0,
                end: t.end.0,
                screening: t.screening.map(|d| d.0),
            });
        }
        terms.sort_by_key(|t| t.start);
        for pair in terms.windows(2) {
            if pair[1].start <= pair[0].end {
                problems.push(format!(
                    "terms `{}` ({} to {}) and `{}` ({} to {}) overlap",
                    pair[0].name,
                    pair[0].start,
                    pair[0].end,
                    pair[1].name,
                    pair[1].start,
                    pair[1].end
                ));
            }
        }
        let mut holidays = Vec::new();
        for h in &file.holidays {
            if h.end.0 < h.start.0 {
                problems.push(format!(
                    "holiday `{}` ends on {} before it starts on {}",
                    h.name, h.end.0, h.start.0
                ));
            } else {
                holidays.push((h.start.0, h.end.0));
            }
        }
        let day_ends = match &file.school_day_ends {
            None => default_day_ends(),
            Some(text) => match NaiveTime::parse_from_str(text, "%H:%M") {
                Ok(t) if t > NaiveTime::MIN => t,
                _ => {
                    problems.push(format!(
                        "`school_day_ends` `{text}` is not a time of day like 17:30"
                    ));
                    default_day_ends()
                }
            },
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Calendar {
            day_ends,
            school: Some(file.school.clone()),
            offset,
            weekdays,
            terms,
            holidays,
            make_up_days: file.make_up_days.iter().map(|d| d.0).collect(),
        })
    }

    /// The day after the last term this calendar knows, if it has terms.
    fn known_until(&self) -> Option<NaiveDate> {
        self.terms.last().map(|t| t.end)
    }

    /// Whether the school is open on `day`. Past the last term the
    /// calendar knows, the Mon–Fri fallback answers.
    pub fn is_school_day(&self, day: NaiveDate) -> bool {
        match self.known_until() {
            Some(last) if day <= last => {}
            _ if !self.terms.is_empty() => return MON_TO_FRI.contains(&day.weekday()),
            _ => {}
        }
        if self.make_up_days.contains(&day) {
            return true;
        }
        if !self.terms.is_empty() && !self.terms.iter().any(|t| t.start <= day && day <= t.end) {
            return false;
        }
        if self.holidays.iter().any(|(s, e)| *s <= day && day <= *e) {
            return false;
        }
        self.weekdays.contains(&day.weekday())
    }

    /// The first school day on or after `day` (None: none within a year).
    pub fn on_or_after(&self, day: NaiveDate) -> Option<NaiveDate> {
        (0..SEARCH_DAYS)
            .map(|i| day + Duration::days(i))
            .find(|d| self.is_school_day(*d))
    }

    /// The `n`th school day after `day` (`day` itself not counted).
    pub fn add_school_days(&self, day: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut at = day;
        for _ in 0..n {
            at = self.on_or_after(at + Duration::days(1))?;
        }
        Some(at)
    }

    /// When a limit of `n` school days counted from `from` falls due: the
    /// end ([`Calendar::day_ends`], local time) of the `n`th school day
    /// after `from`'s day, as [`Calendar::add_school_days`] counts them
    /// (so one school day from a Friday is Monday, and across a holiday
    /// week the first school day after it). `n = 0` is "the same school
    /// day": the end of `from`'s day when that is a school day not yet
    /// over, else of the next school day. `None` only when the calendar
    /// has no school day within a year.
    pub fn school_days_due(&self, from: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        let local = from.with_timezone(&self.offset);
        let day = local.date_naive();
        let due_day = if n > 0 {
            self.add_school_days(day, n)?
        } else if self.is_school_day(day) && local.time() < self.day_ends {
            day
        } else {
            self.on_or_after(day + Duration::days(1))?
        };
        due_day
            .and_time(self.day_ends)
            .and_local_timezone(self.offset)
            .single()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The screening days of the terms that start after `from` and by `to`
    /// (the term's `screening` day, else its first school day).
    pub fn screenings(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        self.terms
            .iter()
            .filter_map(|t| t.screening.or_else(|| self.on_or_after(t.start)))
            .filter(|d| *d > from && *d <= to)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"
school = "示例一中"
utc_offset = "+08:00"
make_up_days = [2026-10-10]

[[term]]
name = "2026 秋"
start = 2026-09-01
end = 2027-01-22
screening = 2026-09-21

[[term]]
name = "2027 春"
start = 2027-02-22
end = 2027-07-02

[[holiday]]
name = "国庆"
start = 2026-10-01
end = 2026-10-07
"#;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn terms_holidays_and_make_up_days_decide_school_days() {
        let c = Calendar::parse(SAMPLE).unwrap();
        assert!(c.is_school_day(d("2026-09-30")), "a Wednesday in term");
        assert!(
            !c.is_school_day(d("2026-10-05")),
            "a Monday of the holiday week"
        );
        assert!(c.is_school_day(d("2026-10-10")), "a make-up Saturday");
        assert!(!c.is_school_day(d("2026-10-11")), "an ordinary Sunday");
        assert!(!c.is_school_day(d("2027-02-01")), "the winter break");
        assert_eq!(c.on_or_after(d("2027-01-23")), Some(d("2027-02-22")));
        assert!(
            c.is_school_day(d("2027-08-02")),
            "past the last term: Mon–Fri fallback"
        );
        // A Friday: the next school day is Monday; across the holiday week
        // it is the Thursday after.
        assert_eq!(c.add_school_days(d("2026-09-25"), 1), Some(d("2026-09-28")));
        assert_eq!(c.add_school_days(d("2026-09-30"), 1), Some(d("2026-10-08")));
        assert_eq!(
            c.screenings(d("2026-09-01"), d("2027-06-01")),
            vec![d("2026-09-21"), d("2027-02-22")]
        );
    }

    /// `day`T`hm`:00 at +08:00, in UTC.
    fn at(day: &str, hm: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T{hm}:00+08:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn school_day_limits_end_at_the_end_of_a_school_day() {
        let c = Calendar::parse(SAMPLE).unwrap();
        // A Friday in term, during school: the same school day ends at
        // 18:00; one school day is Monday, across the weekend.
        assert_eq!(
            c.school_days_due(at("2026-09-25", "10:00"), 0),
            Some(at("2026-09-25", "18:00"))
        );
        assert_eq!(
            c.school_days_due(at("2026-09-25", "10:00"), 1),
            Some(at("2026-09-28", "18:00"))
        );
        // Set on the Saturday: the same school day and one school day
        // later are both Monday; after school on a Wednesday, Thursday.
        assert_eq!(
            c.school_days_due(at("2026-09-26", "11:00"), 0),
            Some(at("2026-09-28", "18:00"))
        );
        assert_eq!(
            c.school_days_due(at("2026-09-26", "11:00"), 1),
            Some(at("2026-09-28", "18:00"))
        );
        assert_eq!(
            c.school_days_due(at("2026-09-23", "19:00"), 0),
            Some(at("2026-09-24", "18:00"))
        );
        assert_eq!(
            c.school_days_due(at("2026-09-23", "19:00"), 1),
            Some(at("2026-09-24", "18:00"))
        );
    }

    #[test]
    fn a_school_day_limit_never_falls_due_in_the_holiday_week() {
        let c = Calendar::parse(SAMPLE).unwrap();
        // The Friday before the National Day week (1–7 October): Mon 28,
        // Tue 29, Wed 30, then Thu 8 and Fri 9 October, where Monday to
        // Friday would have said Friday 2 October, in the holiday.
        assert_eq!(
            c.school_days_due(at("2026-09-25", "10:00"), 5),
            Some(at("2026-10-09", "18:00"))
        );
        assert_eq!(
            Calendar::fallback().school_days_due(at("2026-09-25", "10:00"), 5),
            Some(at("2026-10-02", "18:00"))
        );
        // Tuesday 29th: Wed 30, then Thu 8 and Fri 9 October.
        assert_eq!(
            c.school_days_due(at("2026-09-29", "09:00"), 3),
            Some(at("2026-10-09", "18:00"))
        );
        // Set during the holiday: the count starts on the 8th.
        assert_eq!(
            c.school_days_due(at("2026-10-03", "15:00"), 0),
            Some(at("2026-10-08", "18:00"))
        );
        // The fallback knows no holiday: Thursday 1 October.
        assert_eq!(
            Calendar::fallback().school_days_due(at("2026-09-29", "09:00"), 2),
            Some(at("2026-10-01", "18:00"))
        );
    }

    #[test]
    fn a_make_up_saturday_counts_as_a_school_day() {
        let c = Calendar::parse(SAMPLE).unwrap();
        // Friday 9 October: the next school day is the make-up Saturday,
        // then Monday (Sunday the 11th is an ordinary Sunday).
        assert_eq!(
            c.school_days_due(at("2026-10-09", "10:00"), 1),
            Some(at("2026-10-10", "18:00"))
        );
        assert_eq!(
            c.school_days_due(at("2026-10-09", "10:00"), 2),
            Some(at("2026-10-12", "18:00"))
        );
        // Set on the make-up Saturday itself, in school hours.
        assert_eq!(
            c.school_days_due(at("2026-10-10", "09:00"), 0),
            Some(at("2026-10-10", "18:00"))
        );
    }

    #[test]
    fn the_end_of_a_school_day_is_the_calendars_to_set() {
        // Top level, so before the first table.
        let text = SAMPLE.replacen(
            "make_up_days",
            "school_day_ends = \"17:30\"\nmake_up_days",
            1,
        );
        let c = Calendar::parse(&text).unwrap();
        assert_eq!(c.day_ends, NaiveTime::from_hms_opt(17, 30, 0).unwrap());
        // 17:45 on a Wednesday is after school: the next school day is day 0.
        assert_eq!(
            c.school_days_due(at("2026-09-09", "17:45"), 0),
            Some(at("2026-09-10", "17:30"))
        );
        assert_eq!(
            Calendar::fallback().school_days_due(at("2026-09-09", "17:45"), 0),
            Some(at("2026-09-09", "18:00"))
        );
        for bad in ["25:00", "5pm", "00:00"] {
            let text = format!("school = \"x\"\nschool_day_ends = \"{bad}\"\n");
            let problems = Calendar::parse(&text).unwrap_err();
            assert!(
                problems[0].contains(&format!("`school_day_ends` `{bad}`")),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn the_fallback_is_monday_to_friday() {
        let c = Calendar::fallback();
        assert!(!c.is_school_day(d("2026-11-21")), "Saturday");
        assert_eq!(c.add_school_days(d("2026-11-20"), 1), Some(d("2026-11-23")));
    }

    #[test]
    fn overlapping_terms_and_backwards_spans_are_named() {
        let bad = r#"
school = "二中"
[[term]]
name = "秋"
start = 2026-09-01
end = 2027-01-22
[[term]]
name = "春"
start = "2027-01-10"
end = 2027-07-01
[[holiday]]
name = "国庆"
start = 2026-10-07
end = 2026-10-01
"#;
        let problems = Calendar::parse(bad).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`秋`") && p.contains("`春`") && p.contains("overlap")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("holiday `国庆` ends on 2026-10-01 before")),
            "{problems:?}"
        );
        let typo = Calendar::parse("school = \"x\"\nweekdays = [\"mon\", \"fry\"]\n").unwrap_err();
        assert!(typo[0].contains("unknown weekday `fry`"), "{typo:?}");
        let date = Calendar::parse(
            "school = \"x\"\n[[term]]\nname = \"t\"\nstart = \"2026-13-01\"\nend = 2026-12-01\n",
        )
        .unwrap_err();
        assert!(date[0].contains("2026-13-01"), "{date:?}");
    }
}
