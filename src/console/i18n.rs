//! Every string a responder sees, in Simplified Chinese and English. Draw
//! code takes its words from a [`Strings`] and never from a literal.

use crate::protocol::{CaseStatus, Category, Level, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The explicit choice, else the locale (`LC_ALL`, `LC_MESSAGES`,
    /// `LANG`): English for an `en*` locale, Chinese otherwise, since the
    /// people on duty are Chinese school staff.
    pub fn resolve(explicit: Option<Lang>) -> Lang {
        if let Some(lang) = explicit {
            return lang;
        }
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        if locale.starts_with("en") {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

pub struct Strings {
    pub app_title: &'static str,
    pub drill_banner: &'static str,
    pub drill_marker: &'static str,
    pub imminent: &'static str,
    pub col_level: &'static str,
    pub col_case: &'static str,
    pub col_student: &'static str,
    pub col_class: &'static str,
    pub col_category: &'static str,
    pub col_age: &'static str,
    pub col_status: &'static str,
    pub sorted_by: &'static str,
    pub no_cases: &'static str,
    pub open_count: &'static str,
    pub unacknowledged: &'static str,
    pub conn_connecting: &'static str,
    pub conn_connected: &'static str,
    pub conn_retry: &'static str,
    pub conn_refused: &'static str,
    pub help_hint: &'static str,
    pub help_title: &'static str,
    pub help_keys: &'static [(&'static str, &'static str)],
    pub detail_student: &'static str,
    pub detail_level: &'static str,
    pub detail_category: &'static str,
    pub detail_source: &'static str,
    pub detail_status: &'static str,
    pub detail_opened: &'static str,
    pub detail_updated: &'static str,
    pub detail_summary: &'static str,
    pub detail_signals: &'static str,
    pub detail_alerts: &'static str,
    pub detail_by: &'static str,
    pub under_14: &'static str,
    pub none: &'static str,
    pub ack_sent: &'static str,
    pub ack_done: &'static str,
    pub refused: &'static str,
    pub ago_minutes: &'static str,
    pub ago_hours: &'static str,
    pub ago_days: &'static str,
    pub ago_now: &'static str,
}

impl Strings {
    pub fn level(&self, level: Level) -> &'static str {
        match (self.is_zh(), level) {
            (true, Level::High) => "高危",
            (true, Level::Key) => "重点",
            (true, Level::General) => "一般",
            (false, Level::High) => "High",
            (false, Level::Key) => "Key",
            (false, Level::General) => "General",
        }
    }

    pub fn category(&self, c: Category) -> &'static str {
        let zh = self.is_zh();
        match c {
            Category::SuicideRisk => pick(zh, "自杀风险", "Suicide risk"),
            Category::SelfHarm => pick(zh, "自伤", "Self-harm"),
            Category::ViolenceThreat => pick(zh, "暴力威胁", "Violence threat"),
            Category::Bullying => pick(zh, "欺凌", "Bullying"),
            Category::TraumaBereavement => pick(zh, "创伤/丧亲", "Trauma/loss"),
            Category::AcuteDistress => pick(zh, "急性痛苦", "Acute distress"),
            Category::Other => pick(zh, "其他", "Other"),
        }
    }

    pub fn source(&self, s: Source) -> &'static str {
        let zh = self.is_zh();
        match s {
            Source::Screening => pick(zh, "心理普查", "Screening"),
            Source::Behavior => pick(zh, "行为数据", "Behaviour data"),
            Source::Treehole => pick(zh, "树洞", "Tree-hole post"),
            Source::TeacherReport => pick(zh, "教师报告", "Teacher report"),
            Source::ParentReport => pick(zh, "家长报告", "Parent report"),
            Source::SelfReferral => pick(zh, "主动求助", "Self-referral"),
            Source::PeerTip => pick(zh, "同伴报告", "Peer tip"),
            Source::Hotline => pick(zh, "热线", "Hotline"),
            Source::Manual => pick(zh, "手动录入", "Manual entry"),
        }
    }

    pub fn status(&self, s: CaseStatus) -> &'static str {
        let zh = self.is_zh();
        match s {
            CaseStatus::Open => pick(zh, "待确认", "Unacked"),
            CaseStatus::Acknowledged => pick(zh, "已确认", "Acked"),
            CaseStatus::Closed => pick(zh, "已结案", "Closed"),
        }
    }

    /// "attempt 3" / "第3次".
    pub fn attempt(&self, n: u32) -> String {
        if self.is_zh() {
            format!("第{n}次")
        } else {
            format!("attempt {n}")
        }
    }

    fn is_zh(&self) -> bool {
        std::ptr::eq(self, &ZH)
    }
}

fn pick(zh: bool, a: &'static str, b: &'static str) -> &'static str {
    if zh { a } else { b }
}

pub static ZH: Strings = Strings {
    app_title: "crisisdesk 心理危机值守台",
    drill_banner: "演练 DRILL · 以下为演练数据，非真实事件",
    drill_marker: "演练",
    imminent: "紧急",
    col_level: "级别",
    col_case: "案例",
    col_student: "学生",
    col_class: "班级",
    col_category: "类别",
    col_age: "已开",
    col_status: "状态",
    sorted_by: "排序: 紧急 > 级别 > 最早",
    no_cases: "当前没有未结案例",
    open_count: "未结",
    unacknowledged: "待确认",
    conn_connecting: "连接中",
    conn_connected: "已连接",
    conn_retry: "连接中断，重试于",
    conn_refused: "被中继拒绝",
    help_hint: "? 帮助  q 退出",
    help_title: "按键",
    help_keys: &[
        ("↑/k  ↓/j", "上下移动"),
        ("PgUp/PgDn", "翻页"),
        ("g / G", "第一个 / 最后一个"),
        ("Enter", "打开案例"),
        ("Esc", "返回列表"),
        ("a", "确认（认领）案例"),
        ("?", "显示/隐藏帮助"),
        ("q", "退出"),
    ],
    detail_student: "学生",
    detail_level: "级别",
    detail_category: "类别",
    detail_source: "来源",
    detail_status: "状态",
    detail_opened: "开案",
    detail_updated: "更新",
    detail_summary: "摘要",
    detail_signals: "信号",
    detail_alerts: "预警记录",
    detail_by: "确认人",
    under_14: "未满14岁",
    none: "无",
    ack_sent: "已发送确认",
    ack_done: "已确认",
    refused: "未执行",
    ago_minutes: "分钟",
    ago_hours: "小时",
    ago_days: "天",
    ago_now: "刚刚",
};

pub static EN: Strings = Strings {
    app_title: "crisisdesk duty console",
    drill_banner: "DRILL 演练 · exercise data below, not a real incident",
    drill_marker: "DRILL",
    imminent: "NOW",
    col_level: "Level",
    col_case: "Case",
    col_student: "Student",
    col_class: "Class",
    col_category: "Category",
    col_age: "Open",
    col_status: "Status",
    sorted_by: "sorted: imminent > level > oldest",
    no_cases: "No open cases",
    open_count: "open",
    unacknowledged: "unacked",
    conn_connecting: "connecting",
    conn_connected: "connected",
    conn_retry: "disconnected, retry in",
    conn_refused: "refused by relay",
    help_hint: "? help  q quit",
    help_title: "Keys",
    help_keys: &[
        ("↑/k  ↓/j", "move"),
        ("PgUp/PgDn", "page"),
        ("g / G", "first / last"),
        ("Enter", "open case"),
        ("Esc", "back to list"),
        ("a", "acknowledge (claim) case"),
        ("?", "toggle help"),
        ("q", "quit"),
    ],
    detail_student: "Student",
    detail_level: "Level",
    detail_category: "Category",
    detail_source: "Source",
    detail_status: "Status",
    detail_opened: "Opened",
    detail_updated: "Updated",
    detail_summary: "Summary",
    detail_signals: "Signals",
    detail_alerts: "Alerts",
    detail_by: "by",
    under_14: "under 14",
    none: "none",
    ack_sent: "acknowledgement sent",
    ack_done: "acknowledged",
    refused: "not done",
    ago_minutes: "m",
    ago_hours: "h",
    ago_days: "d",
    ago_now: "now",
};
