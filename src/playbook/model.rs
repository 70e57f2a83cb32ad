//! The checked, in-memory form of a playbook. Only `format` builds these
//! from TOML, after every rule in `docs/playbooks.md` has passed, so the
//! progress model can rely on unique ids, known targets and no cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::{Category, Level, Role};

/// The language a responder reads the console in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// Text every responder must be able to read, so both languages are
/// mandatory (the checker refuses a playbook with either one missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub zh: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => &self.en,
        }
    }
}

/// A length of time as counselors write it: `30s`, `10m`, `2h`, `1d`, `2w`,
/// or a sum such as `1h30m`. Wall-clock only: `1d` is 24 hours. A limit in
/// school days ("within 1 school day") is a [`Limit::SchoolDays`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    seconds: i64,
}

/// The longest interval a playbook may use. Nothing in the protocols runs
/// longer than a school year; anything beyond is almost surely a typo
/// (`300d` for `30d`) that would hide a deadline for good.
pub const MAX_INTERVAL_DAYS: i64 = 366;

const UNITS: [(char, i64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl Interval {
    pub fn from_seconds(seconds: i64) -> Option<Interval> {
        (seconds > 0 && seconds <= MAX_INTERVAL_DAYS * 86_400).then_some(Interval { seconds })
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    pub fn to_chrono(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.seconds)
    }

    /// Parses `10m`, `1h30m` and the like. The error says what is wrong in
    /// words a counselor can act on.
    pub fn parse(text: &str) -> Result<Interval, String> {
        if text.is_empty() {
            return Err("is empty; write e.g. `10m`, `2h` or `1d`".into());
        }
        let mut total: i64 = 0;
        let mut digits = String::new();
        let mut last_unit_rank: Option<usize> = None;
        for c in text.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let Some(rank) = UNITS.iter().position(|(u, _)| *u == c) else {
                return Err(format!(
                    "has unknown unit `{c}`; use s, m, h, d or w (e.g. `10m`)"
                ));
            };
            if digits.is_empty() {
                return Err(format!("has unit `{c}` without a number before it"));
            }
            if last_unit_rank.is_some_and(|r| r >= rank) {
                return Err(
                    "must list units from largest to smallest, each once (e.g. `1h30m`)".into(),
                );
            }
            last_unit_rank = Some(rank);
            let n: i64 = digits.parse().map_err(|_| "is too large".to_string())?;
            digits.clear();
            total = n
                .checked_mul(UNITS[rank].1)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| "is too large".to_string())?;
        }
        if !digits.is_empty() {
            return Err(format!(
                "ends in `{digits}` without a unit; write e.g. `{digits}m`"
            ));
        }
        if total == 0 {
            return Err("is zero; a zero limit is overdue the moment the case opens".into());
        }
        Interval::from_seconds(total)
            .ok_or_else(|| format!("is longer than {MAX_INTERVAL_DAYS} days; check for a typo"))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Weeks are accepted on input but shown as days: "14d" reads the
        // way the protocols state limits.
        let mut rest = self.seconds;
        for (unit, size) in UNITS.into_iter().skip(1) {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Interval::parse(&text).map_err(|why| serde::de::Error::custom(format!("`{text}` {why}")))
    }
}

/// The most school days a limit may count: a school year has about 190, so
/// anything longer is almost surely a typo.
pub const MAX_SCHOOL_DAYS: u32 = 190;

/// A step's time limit (`due` in the TOML): a wall-clock [`Interval`]
/// (`"1d"` is 24 hours) or a count of school days on the calendar of the
/// case's school (`"3 school_days"`, `"1 school_day"`; `"0 school_days"`
/// is the same school day). A school-day limit ends at the end of the
/// school day it lands on; see [`crate::followup::calendar::Calendar::school_days_due`].
/// On the wire and in the TOML it is the string as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Wall(Interval),
    SchoolDays(u32),
}

impl Limit {
    /// Parses `"10m"`, `"1h30m"`, `"3 school_days"`, `"0 school_days"`.
    pub fn parse(text: &str) -> Result<Limit, String> {
        let mut words = text.split(' ');
        let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            if text.contains("school") {
                return Err(
                    "is not a count of school days; write e.g. `3 school_days` (one space, no other words)".into(),
                );
            }
            return Interval::parse(text).map(Limit::Wall).map_err(|why| {
                if why.starts_with("has unknown unit") {
                    format!("{why}, or school days (e.g. `3 school_days`)")
                } else {
                    why
                }
            });
        };
        if !matches!(unit, "school_day" | "school_days") {
            if UNITS
                .iter()
                .any(|(u, _)| unit.len() == 1 && unit.starts_with(*u))
            {
                return Err(format!(
                    "has a space before `{unit}`; write `{count}{unit}`"
                ));
            }
            return Err(format!(
                "has unknown unit `{unit}`; use s, m, h, d or w (e.g. `10m`), or `{count} school_days`"
            ));
        }
        if count.is_empty() || !count.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "counts school days with `{count}`; write a whole number from 0 (the same school day) up, e.g. `3 school_days`"
            ));
        }
        let n: u32 = count.parse().map_err(|_| "is too large".to_string())?;
        if n > MAX_SCHOOL_DAYS {
            return Err(format!(
                "is more than {MAX_SCHOOL_DAYS} school days (a school year); check for a typo"
            ));
        }
        Ok(Limit::SchoolDays(n))
    }

    pub fn school_days(self) -> Option<u32> {
        match self {
            Limit::SchoolDays(n) => Some(n),
            Limit::Wall(_) => None,
        }
    }

    /// The limit in words: "3 个上学日" / "3 school days", "当天（上学日）" /
    /// "the same school day", or the interval as written ("1d").
    pub fn label(self, lang: Lang) -> String {
        match (self, lang) {
            (Limit::Wall(i), _) => i.to_string(),
            (Limit::SchoolDays(0), Lang::Zh) => "同一上学日内".to_string(),
            (Limit::SchoolDays(0), Lang::En) => "the same school day".to_string(),
            (Limit::SchoolDays(n), Lang::Zh) => format!("{n} 个上学日"),
            (Limit::SchoolDays(1), Lang::En) => "1 school day".to_string(),
            (Limit::SchoolDays(n), Lang::En) => format!("{n} school days"),
        }
    }
}

/// Said beside a school-day due time counted without the school's
/// calendar (none loaded for the school, or the case's school unknown).
pub fn weekdays_fallback_note(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "按工作日计（未配置校历）",
        Lang::En => "counted as weekdays (no school calendar)",
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Wall(i) => i.fmt(f),
            Limit::SchoolDays(1) => f.write_str("1 school_day"),
            Limit::SchoolDays(n) => write!(f, "{n} school_days"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Limit::parse(&text).map_err(|why| serde::de::Error::custom(format!("`{text}` {why}")))
    }
}

/// Which cases get a playbook without anyone choosing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub categories: Vec<Category>,
    pub min_level: Level,
    /// `Some(true)`: imminent cases only; `Some(false)`: never imminent ones;
    /// `None`: either.
    pub imminent: Option<bool>,
    /// Breaks ties between playbooks matching the same case; higher wins.
    pub priority: i64,
}

impl Match {
    pub fn admits(&self, category: Category, level: Level, imminent: bool) -> bool {
        self.categories.contains(&category)
            && level >= self.min_level
            && self.imminent.is_none_or(|want| want == imminent)
    }
}

/// A protocol or regulation the playbook rests on, cited by steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    pub id: String,
    pub label: Text,
    /// Steps that become active when this option is chosen.
    pub next: Vec<String>,
    /// On a safeguarding gate: this answer means the guardian must not be
    /// told (they may be the source of harm, or telling raises the danger).
    /// Its `next` opens a mandatory report instead of the call.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsafe_answer: bool,
}

/// One way a step switches other steps on: a choice's option, or a contact
/// step's `refused` / `not_reached` outcome. The checker and the progress
/// model treat both alike, so a refusal path is an ordinary branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Branch<'a> {
    pub id: &'a str,
    pub next: &'a [String],
}

/// The branch ids a contact step offers, in the order
/// [`StepKind::branches`] lists them.
pub const CONTACT_REFUSED: &str = "refused";
pub const CONTACT_NOT_REACHED: &str = "not_reached";

/// Whom a contact step reaches. Guardian contacts must sit behind a
/// safeguarding gate (see `docs/playbooks.md`), so the kind is stated, not
/// guessed from the title.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contactee {
    /// 监护人: the legal guardians of a minor.
    Guardian,
    /// 家属 / 紧急联系人 of an adult student.
    Family,
    /// 120 / 110 / 119 or a hospital.
    EmergencyServices,
    /// Another school, a platform, an agency.
    Other,
}

impl Contactee {
    pub const NAMES: [&'static str; 4] = ["guardian", "family", "emergency_services", "other"];

    pub fn parse(name: &str) -> Option<Contactee> {
        Some(match name {
            "guardian" => Contactee::Guardian,
            "family" => Contactee::Family,
            "emergency_services" => Contactee::EmergencyServices,
            "other" => Contactee::Other,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Contactee::NAMES[self as usize]
    }
}

/// A named situation that calls for an emergency number at once, whatever
/// the checklist order. The console shows the trigger labels beside the
/// call so nobody has to remember them under stress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Weapon,
    Height,
    Missing,
    Violence,
    Ingestion,
    Attempt,
    Injury,
    Trapped,
    Agitation,
}

impl Trigger {
    pub const ALL: [Trigger; 9] = [
        Trigger::Weapon,
        Trigger::Height,
        Trigger::Missing,
        Trigger::Violence,
        Trigger::Ingestion,
        Trigger::Attempt,
        Trigger::Injury,
        Trigger::Trapped,
        Trigger::Agitation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Weapon => "weapon",
            Trigger::Height => "height",
            Trigger::Missing => "missing",
            Trigger::Violence => "violence",
            Trigger::Ingestion => "ingestion",
            Trigger::Attempt => "attempt",
            Trigger::Injury => "injury",
            Trigger::Trapped => "trapped",
            Trigger::Agitation => "agitation",
        }
    }

    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn label(self, lang: Lang) -> &'static str {
        let (zh, en) = match self {
            Trigger::Weapon => ("持有刀具等凶器", "has a weapon"),
            Trigger::Height => ("在楼顶、窗台等高处", "at a height (roof, window ledge)"),
            Trigger::Missing => ("已离校或失联", "has left campus or is missing"),
            Trigger::Violence => ("正在伤人或打斗", "violence to others"),
            Trigger::Ingestion => ("服药过量或误食有害物", "overdose or ingestion"),
            Trigger::Attempt => ("正在实施自伤或自杀", "an attempt under way"),
            Trigger::Injury => ("受伤严重", "serious injury"),
            Trigger::Trapped => ("被困或需要破拆救援", "trapped, needs rescue"),
            Trigger::Agitation => (
                "极度激越、无法安抚",
                "severe agitation that cannot be calmed",
            ),
        };
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// The emergency numbers an anytime step can stand for.
pub const EMERGENCY_NUMBERS: [&str; 3] = ["120", "110", "119"];

/// What a time limit rests on: a project default, or one of the
/// playbook's `[[sources]]` that really states it. Shown beside the limit
/// in the console and in reviews, so nobody mistakes a default for a rule.
/// On the wire it is the string the playbook holds: `"default"` or a
/// source id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DueBasis {
    #[default]
    Default,
    Source(String),
}

impl Serialize for DueBasis {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DueBasis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(DueBasis::parse(&text))
    }
}

impl DueBasis {
    pub fn parse(text: &str) -> DueBasis {
        match text {
            "default" => DueBasis::Default,
            id => DueBasis::Source(id.to_string()),
        }
    }

    pub fn is_default(&self) -> bool {
        *self == DueBasis::Default
    }

    /// `default` or the source id, as written in the playbook.
    pub fn as_str(&self) -> &str {
        match self {
            DueBasis::Default => "default",
            DueBasis::Source(id) => id,
        }
    }
}

/// The harmful practices no instruction may ask for, and the one shared
/// notice that forbids them (shown once per checklist, not copied into
/// each playbook, so the checker can refuse the words everywhere else).
/// Sources: 梅州 承诺书 voided by the county bureau [R51]; safety plans
/// replace no-suicide contracts [R14]; ICSES on exclusion [R57].
pub const FORBIDDEN_TERMS: [&str; 16] = [
    "承诺书",
    "保证书",
    "免责",
    "劝退",
    "强制休学",
    "要求休学",
    "劝其休学",
    "责令休学",
    "开除",
    "全班通报",
    "no-suicide contract",
    "no-harm contract",
    "waiver",
    "expel",
    "forced leave",
    "counsel out",
];

/// The shared line every playbook with `harm_notice = true` shows.
pub fn forbidden_notice(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => {
            "不得要求学生或家长签署不自杀、免责一类的承诺书；不得以此为由强制休学或劝退；\
不得因自伤取消学生参加活动的资格；未经学生和监护人同意，不向班级通报任何情况。"
        }
        Lang::En => {
            "Never ask a student or family to sign a no-suicide pledge or a liability waiver; \
never force a leave of absence or push the student out of school; never bar a student \
from activities because of self-harm; tell the class nothing without the student's and \
guardians' consent."
        }
    }
}

/// What doing a step takes beyond a tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    Check,
    /// Done by writing what was found or agreed.
    Note,
    /// Done by picking one option; the option's `next` steps come alive.
    Choice {
        options: Vec<ChoiceOption>,
    },
    /// Done when someone is reached (or reached and refuses); unanswered
    /// calls are counted and the step stays open for another try.
    Contact {
        /// Whom the call is to (`contacts` in the TOML).
        #[serde(default = "default_contactee")]
        contacts: Contactee,
        /// Steps switched on when the person reached refuses (care, coming
        /// to school, a referral): the refusal path.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        if_refused: Vec<String>,
        /// Steps switched on once `max_attempts` calls went unanswered and
        /// nobody has been reached yet.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        if_unreached: Vec<String>,
        /// After this many unsuccessful attempts the step escalates at once,
        /// whatever its due time: the escalation role must find another way.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
        /// How long to wait before trying again after an unsuccessful one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<Interval>,
    },
    /// Done by recording the institution and the appointment time.
    Referral,
}

fn default_contactee() -> Contactee {
    Contactee::Other
}

impl StepKind {
    /// Every branch this step can switch on, choice options first by their
    /// order, then a contact step's `refused` and `not_reached`.
    pub fn branches(&self) -> Vec<Branch<'_>> {
        match self {
            StepKind::Choice { options } => options
                .iter()
                .map(|o| Branch {
                    id: &o.id,
                    next: &o.next,
                })
                .collect(),
            StepKind::Contact {
                if_refused,
                if_unreached,
                ..
            } => vec![
                Branch {
                    id: CONTACT_REFUSED,
                    next: if_refused,
                },
                Branch {
                    id: CONTACT_NOT_REACHED,
                    next: if_unreached,
                },
            ],
            _ => Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Check => "check",
            StepKind::Note => "note",
            StepKind::Choice { .. } => "choice",
            StepKind::Contact { .. } => "contact",
            StepKind::Referral => "referral",
        }
    }

    pub fn options(&self) -> &[ChoiceOption] {
        match self {
            StepKind::Choice { options } => options,
            _ => &[],
        }
    }
}

/// When a step falls due: `after` the case opens (when `None`) or after the
/// named step is done or skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub within: Limit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// What the limit rests on (`due_basis` in the TOML).
    #[serde(default, skip_serializing_if = "DueBasis::is_default")]
    pub basis: DueBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub role: Role,
    pub title: Text,
    pub instruction: Text,
    #[serde(flatten)]
    pub kind: StepKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Due>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<Role>,
    /// Ids of the playbook's citations this step rests on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Other roles that may work this step beside its owner: whoever is on
    /// scene (security, a dorm warden signed in as security, the nurse)
    /// when the owner is not there yet, as at night.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Role>,
    /// Can be done at any moment, outside the checklist order: an
    /// emergency call, meeting the ambulance. Never due, never required.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anytime: bool,
    /// The emergency number an anytime step stands for (120/110/119).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<String>,
    /// Situations that call for this step at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// Is this a safeguarding gate ("is it safe to notify the guardian?").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub safeguarding: bool,
    /// A 强制报告 to the police, opened by a gate's unsafe answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mandatory_report: bool,
}

impl Step {
    /// Whether `role` may work this step (its owner or an `also` role).
    /// Skipping by a leader is decided in the progress model.
    pub fn may_act(&self, role: Role) -> bool {
        self.role == role || self.also.contains(&role)
    }

    /// The trigger labels of an anytime step, joined for one line.
    pub fn trigger_labels(&self, lang: Lang) -> String {
        let sep = match lang {
            Lang::Zh => "、",
            Lang::En => ", ",
        };
        self.triggers
            .iter()
            .map(|t| t.label(lang))
            .collect::<Vec<_>>()
            .join(sep)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playbook {
    pub id: String,
    pub version: u32,
    pub title: Text,
    pub summary: Text,
    pub roles: Vec<Role>,
    pub sources: Vec<Citation>,
    /// `None`: never chosen automatically, only added to a case by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Match>,
    pub steps: Vec<Step>,
    /// Show the shared notice of forbidden practices ([`forbidden_notice`])
    /// with this checklist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub harm_notice: bool,
}

impl Playbook {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The shared notice of forbidden practices, when this playbook shows it.
    pub fn harm_notice(&self, lang: Lang) -> Option<&'static str> {
        self.harm_notice.then(|| forbidden_notice(lang))
    }

    /// What a step's time limit rests on, as shown beside it: "默认时限"
    /// / "default limit", or the cited source's name. `None` for a step
    /// without a limit.
    pub fn due_basis_label(&self, step: &Step, lang: Lang) -> Option<String> {
        let due = step.due.as_ref()?;
        Some(match &due.basis {
            DueBasis::Default => match lang {
                Lang::Zh => "默认时限".to_string(),
                Lang::En => "default limit".to_string(),
            },
            DueBasis::Source(id) => {
                let name = self
                    .sources
                    .iter()
                    .find(|c| &c.id == id)
                    .map_or(id.as_str(), |c| c.name.as_str());
                match lang {
                    Lang::Zh => format!("时限依据：{name}"),
                    Lang::En => format!("limit per {name}"),
                }
            }
        })
    }

    /// Anytime steps (emergency calls and the like), in playbook order:
    /// the console shows them apart from the ordered checklist.
    pub fn anytime_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.anytime)
    }

    /// Every (choice step, option) whose `next` lists `step`. A step with
    /// any gate is inactive until one of its gates is chosen.
    pub fn gates<'a>(
        &'a self,
        step: &'a str,
    ) -> impl Iterator<Item = (&'a Step, &'a ChoiceOption)> {
        self.steps.iter().flat_map(move |choice| {
            choice
                .kind
                .options()
                .iter()
                .filter(move |o| o.next.iter().any(|n| n == step))
                .map(move |o| (choice, o))
        })
    }
}

/// The branch choices a step needs before it can become active: choice step
/// index → the option indices that allow it. Every entry must hold at once;
/// an empty option set means the step can never become active.
pub(crate) type Condition = BTreeMap<usize, BTreeSet<usize>>;

/// Activation conditions for every step, in playbook order, computed over
/// `needs` (a step inherits its dependencies' conditions) and branch gates.
/// `None` when the graph has a cycle; the checker reports that separately.
pub(crate) fn conditions(steps: &[Step]) -> Option<Vec<Condition>> {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    // gates[target] = (choice index, option index) pairs listing it.
    let mut gates: Vec<Vec<(usize, usize)>> = vec![Vec::new(); steps.len()];
    for (ci, choice) in steps.iter().enumerate() {
        for (oi, branch) in choice.kind.branches().iter().enumerate() {
            for target in branch.next {
                if let Some(&ti) = index.get(target.as_str()) {
                    gates[ti].push((ci, oi));
                }
            }
        }
    }
    let order = topological_order(steps)?;
    let mut conds: Vec<Condition> = vec![Condition::new(); steps.len()];
    for i in order {
        let mut cond = Condition::new();
        for need in &steps[i].needs {
            if let Some(&ni) = index.get(need.as_str()) {
                intersect_into(&mut cond, &conds[ni]);
            }
        }
        if let Some(&(ci, _)) = gates[i].first() {
            // The checker rejects gates from two different choices, so all
            // gates here share one choice step.
            let allowed: BTreeSet<usize> = gates[i].iter().map(|&(_, oi)| oi).collect();
            intersect_into(&mut cond, &Condition::from([(ci, allowed)]));
            let choice_cond = conds[ci].clone();
            intersect_into(&mut cond, &choice_cond);
        }
        conds[i] = cond;
    }
    Some(conds)
}

fn intersect_into(into: &mut Condition, other: &Condition) {
    for (choice, options) in other {
        match into.get_mut(choice) {
            Some(existing) => existing.retain(|o| options.contains(o)),
            None => {
                into.insert(*choice, options.clone());
            }
        }
    }
}

/// Whether every way `stronger` can hold also satisfies `weaker`.
pub(crate) fn implies(stronger: &Condition, weaker: &Condition) -> bool {
    weaker.iter().all(|(choice, allowed)| {
        stronger
            .get(choice)
            .is_some_and(|have| have.is_subset(allowed))
    })
}

/// Edges "a must come before b": needs, due_after and branch gates.
pub(crate) fn predecessors(steps: &[Step]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        let after = step.due.as_ref().and_then(|d| d.after.as_deref());
        for id in step.needs.iter().map(String::as_str).chain(after) {
            if let Some(&p) = index.get(id) {
                preds[i].push(p);
            }
        }
        for branch in step.kind.branches() {
            for target in branch.next {
                if let Some(&t) = index.get(target.as_str()) {
                    preds[t].push(i);
                }
            }
        }
    }
    preds
}

/// Kahn's algorithm over [`predecessors`]; `None` if there is a cycle.
pub(crate) fn topological_order(steps: &[Step]) -> Option<Vec<usize>> {
    let preds = predecessors(steps);
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    let mut remaining: Vec<usize> = vec![0; steps.len()];
    for (i, ps) in preds.iter().enumerate() {
        remaining[i] = ps.len();
        for &p in ps {
            succs[p].push(i);
        }
    }
    // Seeded in playbook order so the result is stable.
    let mut ready: std::collections::VecDeque<usize> =
        (0..steps.len()).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &s in &succs[i] {
            remaining[s] -= 1;
            if remaining[s] == 0 {
                ready.push_back(s);
            }
        }
    }
    (order.len() == steps.len()).then_some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_print_canonically() {
        for (text, secs, shown) in [
            ("30s", 30, "30s"),
            ("10m", 600, "10m"),
            ("2h", 7200, "2h"),
            ("1d", 86_400, "1d"),
            ("2w", 14 * 86_400, "14d"),
            ("1h30m", 5400, "1h30m"),
            ("90m", 5400, "1h30m"),
        ] {
            let i = Interval::parse(text).unwrap();
            assert_eq!(i.seconds(), secs, "{text}");
            assert_eq!(i.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_intervals_say_why() {
        for (text, fragment) in [
            ("", "empty"),
            ("10", "without a unit"),
            ("10x", "unknown unit `x`"),
            ("m", "without a number"),
            ("0m", "zero"),
            ("30m1h", "largest to smallest"),
            ("400d", "longer than 366 days"),
            ("99999999999999999999s", "too large"),
            ("-5m", "unknown unit `-`"),
            ("10 m", "unknown unit ` `"),
        ] {
            let err = Interval::parse(text).unwrap_err();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn limits_are_intervals_or_school_days() {
        for (text, limit, shown, zh, en) in [
            (
                "1d",
                Limit::Wall(Interval::parse("1d").unwrap()),
                "1d",
                "1d",
                "1d",
            ),
            (
                "0 school_days",
                Limit::SchoolDays(0),
                "0 school_days",
                "同一上学日内",
                "the same school day",
            ),
            (
                "1 school_day",
                Limit::SchoolDays(1),
                "1 school_day",
                "1 个上学日",
                "1 school day",
            ),
            (
                "1 school_days",
                Limit::SchoolDays(1),
                "1 school_day",
                "1 个上学日",
                "1 school day",
            ),
            (
                "3 school_days",
                Limit::SchoolDays(3),
                "3 school_days",
                "3 个上学日",
                "3 school days",
            ),
        ] {
            let l = Limit::parse(text).unwrap();
            assert_eq!(l, limit, "{text}");
            assert_eq!(l.to_string(), shown, "{text}");
            assert_eq!(
                (l.label(Lang::Zh).as_str(), l.label(Lang::En).as_str()),
                (zh, en)
            );
            let json = serde_json::to_string(&l).unwrap();
            assert_eq!(serde_json::from_str::<Limit>(&json).unwrap(), l);
        }
    }

    #[test]
    fn bad_school_day_limits_say_why() {
        for (text, fragment) in [
            ("3 schooldays", "unknown unit `schooldays`"),
            ("3 school_weeks", "unknown unit `school_weeks`"),
            ("school_days", "is not a count of school days"),
            ("3  school_days", "one space"),
            ("-1 school_days", "whole number from 0"),
            ("1.5 school_days", "whole number from 0"),
            ("191 school_days", "more than 190 school days"),
            ("99999999999 school_days", "too large"),
            ("10 m", "space before `m`; write `10m`"),
            ("3x", "or school days"),
        ] {
            let err = Limit::parse(text).unwrap_err();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn match_admits_by_category_level_and_imminence() {
        let m = Match {
            categories: vec![Category::SuicideRisk],
            min_level: Level::Key,
            imminent: Some(false),
            priority: 0,
        };
        assert!(m.admits(Category::SuicideRisk, Level::High, false));
        assert!(!m.admits(Category::SuicideRisk, Level::General, false));
        assert!(!m.admits(Category::SuicideRisk, Level::High, true));
        assert!(!m.admits(Category::SelfHarm, Level::High, false));
    }
}
