//! Reporting periods as people write them on the command line (`report`,
//! `stats`): a day, meaning midnight where the school is, or an exact
//! RFC 3339 time.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

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
