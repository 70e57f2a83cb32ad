//! Reporting periods as people write them on the command line (`report`,
//! `stats`): a day, meaning midnight where the school is, or an exact
//! RFC 3339 time; and the UTC offsets (`--utc-offset`, a calendar's
//! `utc_offset`) those days are read at.

use chrono::format::{Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// An offset written like `+08:00` or `+0800`, by chrono's `%z` parser;
/// anything else on the line refuses it.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text.trim(), StrftimeItems::new("%z")).ok()?;
    parsed.to_fixed_offset().ok()
}

/// `--utc-offset` as given, or this machine's offset when it is not.
pub fn utc_offset(text: Option<&str>) -> anyhow::Result<FixedOffset> {
    match text {
        Some(t) => parse_offset(t)
            .ok_or_else(|| anyhow::anyhow!("--utc-offset: expected like +08:00, got `{t}`")),
        None => Ok(*chrono::Local::now().offset()),
    }
}

/// One end of a period. `flag` names the option in the error, so a typo in
/// `--from` says so.
pub fn boundary(text: &str, offset: FixedOffset, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|d| d.and_local_timezone(offset).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            anyhow::anyhow!("{flag}: expected YYYY-MM-DD or an RFC 3339 time, got `{text}`")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_read_by_chrono_and_nothing_else_is_accepted() {
        let east = |h: i32, m: i32| FixedOffset::east_opt(h * 3600 + m * 60);
        assert_eq!(parse_offset("+08:00"), east(8, 0));
        assert_eq!(parse_offset("+0800"), east(8, 0));
        assert_eq!(parse_offset(" -05:30 "), east(-5, -30));
        assert_eq!(parse_offset("+00:00"), east(0, 0));
        for bad in ["", "8", "+8", "08:00", "+08:00 CST", "+25:00", "UTC", "Z"] {
            assert_eq!(parse_offset(bad), None, "{bad:?}");
        }
        let err = utc_offset(Some("8h")).unwrap_err().to_string();
        assert!(err.contains("--utc-offset") && err.contains("8h"), "{err}");
    }

    #[test]
    fn a_day_is_local_midnight_and_a_time_is_exact() {
        let beijing = FixedOffset::east_opt(8 * 3600).unwrap();
        assert_eq!(
            boundary("2026-09-01", beijing, "--from")
                .unwrap()
                .to_rfc3339(),
            "2026-08-31T16:00:00+00:00"
        );
        assert_eq!(
            boundary("2026-09-01T08:00:00+08:00", beijing, "--from")
                .unwrap()
                .to_rfc3339(),
            "2026-09-01T00:00:00+00:00"
        );
        let err = boundary("1 Sept", beijing, "--to").unwrap_err().to_string();
        assert!(err.starts_with("--to: expected YYYY-MM-DD"), "{err}");
    }
}
