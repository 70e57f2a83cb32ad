//! The column template of the statistics export: which figures, in which
//! order, under which headers. Data, so a district can match its own form.

use serde::Deserialize;

/// The shipped template (`reporting/stats_template.toml`).
pub const DEFAULT: (&str, &str) = (
    "reporting/stats_template.toml",
    include_str!("../../reporting/stats_template.toml"),
);

macro_rules! columns {
    ($($variant:ident = $key:literal),+ $(,)?) => {
        /// A figure a template column can show.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Column { $($variant),+ }

        impl Column {
            pub const ALL: &'static [Column] = &[$(Column::$variant),+];

            pub fn key(self) -> &'static str {
                match self { $(Column::$variant => $key),+ }
            }
        }
    };
}

columns! {
    School = "school",
    Screened = "screened",
    Valid = "valid",
    FlaggedGeneral = "flagged_general",
    FlaggedKey = "flagged_key",
    FlaggedHigh = "flagged_high",
    DetectionRate = "detection_rate",
    CasesOpened = "cases_opened",
    CasesClosed = "cases_closed",
    ClosedStabilized = "closed_stabilized",
    ClosedReferredOut = "closed_referred_out",
    ClosedTransferred = "closed_transferred",
    ClosedNoRisk = "closed_no_risk",
    ClosedError = "closed_error",
    StepsWithDeadline = "steps_with_deadline",
    StepsOnTime = "steps_on_time",
    StepsOnTimeRate = "steps_on_time_rate",
    FollowUpsDone = "follow_ups_done",
    FollowUpsOverdue = "follow_ups_overdue",
    FollowUpsOpen = "follow_ups_open",
    FollowUpOnTimeRate = "follow_up_on_time_rate",
    InterventionEffectiveRate = "intervention_effective_rate",
    Referrals = "referrals",
    Incidents = "incidents",
    IncidentRate = "incident_rate",
    Drills = "drills",
}

impl Column {
    pub fn parse(key: &str) -> Option<Column> {
        Column::ALL.iter().copied().find(|c| c.key() == key)
    }

    pub fn keys() -> Vec<&'static str> {
        Column::ALL.iter().map(|c| c.key()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateColumn {
    pub key: Column,
    pub header: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub sheet: String,
    pub columns: Vec<TemplateColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    #[serde(default = "default_sheet")]
    sheet: String,
    columns: Vec<RawColumn>,
}

fn default_sheet() -> String {
    "统计".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    key: String,
    header: String,
}

impl Template {
    pub fn default_template() -> Result<Template, String> {
        Template::parse(DEFAULT.0, DEFAULT.1)
    }

    /// Parses a template; an unknown key is refused, naming it and the
    /// keys there are.
    pub fn parse(file: &str, text: &str) -> Result<Template, String> {
        let raw: RawTemplate = toml::from_str(text).map_err(|e| {
            format!(
                "{file}: {}",
                e.to_string().lines().collect::<Vec<_>>().join(" ")
            )
        })?;
        if raw.columns.is_empty() {
            return Err(format!("{file}: no [[columns]]"));
        }
        let sheet = raw.sheet.trim();
        // Excel's own limits on sheet names.
        if sheet.is_empty()
            || sheet.chars().count() > 31
            || sheet.contains(['[', ']', ':', '*', '?', '/', '\\'])
        {
            return Err(format!(
                "{file}: `sheet` must be 1 to 31 characters without [ ] : * ? / \\"
            ));
        }
        let mut columns = Vec::new();
        for (i, c) in raw.columns.iter().enumerate() {
            let Some(key) = Column::parse(c.key.trim()) else {
                return Err(format!(
                    "{file}: column {} has unknown key `{}`; known keys: {}",
                    i + 1,
                    c.key,
                    Column::keys().join(", ")
                ));
            };
            if c.header.trim().is_empty() {
                return Err(format!(
                    "{file}: column {} (`{}`) has an empty header",
                    i + 1,
                    c.key
                ));
            }
            columns.push(TemplateColumn {
                key,
                header: c.header.trim().to_string(),
            });
        }
        Ok(Template {
            sheet: sheet.to_string(),
            columns,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_uses_every_column_once() {
        let t = Template::default_template().unwrap();
        assert_eq!(t.columns.len(), Column::ALL.len());
        for c in Column::ALL {
            assert_eq!(t.columns.iter().filter(|x| x.key == *c).count(), 1, "{c:?}");
        }
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let e = Template::parse(
            "t.toml",
            "[[columns]]\nkey = \"school\"\nheader = \"学校\"\n[[columns]]\nkey = \"suicides\"\nheader = \"x\"\n",
        )
        .unwrap_err();
        assert!(e.contains("column 2 has unknown key `suicides`"), "{e}");
        assert!(e.contains("detection_rate"), "{e}");
    }
}
