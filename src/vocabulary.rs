//! The protocol's words as people read them, in both languages: levels,
//! categories, sources, case statuses, roles and outcomes.
//!
//! One place for them, outside the console, because the console is not the
//! only reader: incident reports, reviews and exports print the same names,
//! and a relay-only build (no `console` feature) still writes those. The
//! console's catalogue (`console::i18n`) hands these out unchanged.

use crate::playbook::Lang;
use crate::protocol::{CaseStatus, Category, CloseOutcome, Level, Role, Source};

/// The names in one language.
#[derive(Debug)]
pub struct Names {
    lang: Lang,
}

/// 中文: what reports to the school and the bureau use.
pub static ZH: Names = Names { lang: Lang::Zh };
pub static EN: Names = Names { lang: Lang::En };

impl Names {
    pub fn for_lang(lang: Lang) -> &'static Names {
        match lang {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    fn pick(&self, zh: &'static str, en: &'static str) -> &'static str {
        match self.lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn level(&self, level: Level) -> &'static str {
        match level {
            Level::High => self.pick("高危", "High"),
            Level::Key => self.pick("重点", "Key"),
            Level::General => self.pick("一般", "General"),
        }
    }

    pub fn category(&self, c: Category) -> &'static str {
        match c {
            Category::SuicideRisk => self.pick("自杀风险", "Suicide risk"),
            Category::SelfHarm => self.pick("自伤", "Self-harm"),
            Category::ViolenceThreat => self.pick("暴力威胁", "Violence threat"),
            Category::Bullying => self.pick("欺凌", "Bullying"),
            Category::TraumaBereavement => self.pick("创伤/丧亲", "Trauma/loss"),
            Category::AcuteDistress => self.pick("急性痛苦", "Acute distress"),
            Category::Other => self.pick("其他", "Other"),
        }
    }

    pub fn source(&self, s: Source) -> &'static str {
        match s {
            Source::Screening => self.pick("心理普查", "Screening"),
            Source::Behavior => self.pick("行为数据", "Behaviour data"),
            Source::Treehole => self.pick("树洞", "Tree-hole post"),
            Source::TeacherReport => self.pick("教师报告", "Teacher report"),
            Source::ParentReport => self.pick("家长报告", "Parent report"),
            Source::SelfReferral => self.pick("主动求助", "Self-referral"),
            Source::PeerTip => self.pick("同伴报告", "Peer tip"),
            Source::Hotline => self.pick("热线", "Hotline"),
            Source::Manual => self.pick("手动录入", "Manual entry"),
        }
    }

    pub fn status(&self, s: CaseStatus) -> &'static str {
        match s {
            CaseStatus::Open => self.pick("待确认", "Unacked"),
            CaseStatus::Acknowledged => self.pick("已确认", "Acked"),
            CaseStatus::Closed => self.pick("已结案", "Closed"),
            CaseStatus::Monitoring => self.pick("跟踪中", "Monitoring"),
        }
    }

    pub fn role(&self, role: Role) -> &'static str {
        match role {
            Role::Producer => self.pick("信息源", "producer"),
            Role::Counselor => self.pick("心理教师", "counselor"),
            Role::HeadTeacher => self.pick("班主任", "head teacher"),
            Role::Leader => self.pick("校领导", "leader"),
            Role::Nurse => self.pick("校医", "nurse"),
            Role::Security => self.pick("保卫", "security"),
            Role::Reviewer => self.pick("督导", "reviewer"),
            Role::Admin => self.pick("管理员", "admin"),
            Role::District => self.pick("教育局/区心理中心", "district"),
        }
    }

    pub fn outcome(&self, o: CloseOutcome) -> &'static str {
        match o {
            CloseOutcome::Stabilized => self.pick("已稳定", "stabilized"),
            CloseOutcome::ReferredOut => self.pick("已转介", "referred out"),
            CloseOutcome::Transferred => self.pick("已转学", "transferred"),
            CloseOutcome::NoRisk => self.pick("评估无风险", "no risk found"),
            CloseOutcome::Error => self.pick("误报/重复", "opened in error"),
            CloseOutcome::Graduated => self.pick("已毕业", "graduated"),
        }
    }
}
