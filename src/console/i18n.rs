//! Every string a responder sees, in Simplified Chinese and English. Draw
//! code takes its words from a [`Strings`] and never from a literal.

use super::frames::RefusalCode;
use super::keymap::Cmd;
use crate::playbook::StepState;
use crate::protocol::{
    CaseStatus, Category, CloseOutcome, CommandOp, CommandResult, ErrorDetail, Level, Role, Source,
};
use crate::vocabulary::Names;

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
    pub refused: &'static str,
    pub ago_minutes: &'static str,
    pub ago_hours: &'static str,
    pub ago_days: &'static str,
    pub ago_now: &'static str,
    pub sent: &'static str,
    pub done: &'static str,
    pub prompt_empty: &'static str,
    pub prompt_pick_number: &'static str,
    pub prompt_bad_time: &'static str,
    pub prompt_hint: &'static str,
    pub ask_skip: &'static str,
    pub ask_note: &'static str,
    pub ask_choice: &'static str,
    pub ask_contact: &'static str,
    pub ask_referral_institution: &'static str,
    pub ask_referral_time: &'static str,
    pub ask_add_playbook: &'static str,
    pub ask_close_outcome: &'static str,
    pub ask_close_reason: &'static str,
    pub ask_reveal: &'static str,
    pub identity_hidden: &'static str,
    pub my_steps_title: &'static str,
    pub checklist_title: &'static str,
    pub all_roles_hint: &'static str,
    pub no_steps: &'static str,
    pub no_checklist: &'static str,
    pub col_due: &'static str,
    pub col_step: &'static str,
    pub col_role: &'static str,
    pub overdue: &'static str,
    pub attempts_exhausted: &'static str,
    pub required_mark: &'static str,
    pub escalated: &'static str,
    pub escalation_dismiss: &'static str,
    pub unknown_who: &'static str,
    pub history_reset: &'static str,
    pub my_overdue: &'static str,
    pub conn_stale: &'static str,
    pub conn_offline: &'static str,
    pub data_age: &'static str,
    pub data_never: &'static str,
    pub notify_unavailable: &'static str,
    pub note_new_case: &'static str,
    pub note_escalation: &'static str,
    pub note_open_console: &'static str,
    pub alarm_new: &'static str,
    pub alarm_keys: &'static str,
    pub filter_title: &'static str,
    pub filter_hint: &'static str,
    pub filter_level_key: &'static str,
    pub filter_level_high: &'static str,
    pub filter_level_imminent: &'static str,
    pub filter_unacked: &'static str,
    pub filter_acked: &'static str,
    pub filter_mine: &'static str,
    pub filter_real_only: &'static str,
    pub filter_drills_only: &'static str,
    pub search_label: &'static str,
    pub search_hint: &'static str,
    pub sort_urgency: &'static str,
    pub sort_newest: &'static str,
    pub sort_updated: &'static str,
    pub sort_case_id: &'static str,
    pub sort_label: &'static str,
    pub shown_of: &'static str,
    pub no_match: &'static str,
    pub tab_checklist: &'static str,
    pub tab_history: &'static str,
    pub tab_hint: &'static str,
    pub history_cases: &'static str,
    pub history_none: &'static str,
    pub history_alerts: &'static str,
    pub scores_title: &'static str,
    pub scores_none: &'static str,
    pub scores_next: &'static str,
    pub closed_as: &'static str,
    pub alerts_n: &'static str,
    pub seq_label: &'static str,
    pub help_view_keys: &'static str,
    pub help_global_keys: &'static str,
    pub help_close: &'static str,
    /// Commands queued on this console, not yet handed to the connection.
    pub sending: &'static str,
    /// The case screen's line saying why a screening rule flagged the
    /// student, and the word before the rule's name on it.
    pub detail_why: &'static str,
    pub why_rule: &'static str,
}

impl Strings {
    /// The protocol's names, in this catalogue's language.
    pub fn names(&self) -> &'static Names {
        Names::for_lang(self.lang())
    }

    pub fn level(&self, level: Level) -> &'static str {
        self.names().level(level)
    }

    pub fn category(&self, c: Category) -> &'static str {
        self.names().category(c)
    }

    pub fn source(&self, s: Source) -> &'static str {
        self.names().source(s)
    }

    pub fn status(&self, s: CaseStatus) -> &'static str {
        self.names().status(s)
    }

    pub fn role(&self, role: Role) -> &'static str {
        self.names().role(role)
    }

    pub fn outcome(&self, o: CloseOutcome) -> &'static str {
        self.names().outcome(o)
    }

    pub fn step_state(&self, state: StepState) -> &'static str {
        let zh = self.is_zh();
        match state {
            StepState::Pending => pick(zh, "待办", "to do"),
            StepState::Blocked => pick(zh, "等待前置", "waiting"),
            StepState::Done => pick(zh, "完成", "done"),
            StepState::Skipped => pick(zh, "跳过", "skipped"),
            StepState::Inactive => pick(zh, "不适用", "n/a"),
        }
    }

    /// Playbook text follows the console's language.
    pub fn text<'t>(&self, text: &'t crate::playbook::Text) -> &'t str {
        text.get(self.lang())
    }

    /// The console's language, for the playbook's own labels.
    pub fn lang(&self) -> crate::playbook::Lang {
        if self.is_zh() {
            crate::playbook::Lang::Zh
        } else {
            crate::playbook::Lang::En
        }
    }

    /// The forbidden-practices notice in one line, for a small screen
    /// (the full text is `playbook::forbidden_notice`).
    pub fn harm_notice_short(&self) -> &'static str {
        pick(
            self.is_zh(),
            "⚠ 不得：承诺书 · 强制休学或劝退 · 因自伤取消活动 · 未经同意向班级通报",
            "⚠ Never: waivers · forced leave · pushing out · barring · telling the class",
        )
    }

    /// Beside an emergency step that can be done at any moment.
    pub fn any_time(&self) -> &'static str {
        pick(self.is_zh(), "随时可做", "any time")
    }

    /// Before the due time of a step timed in school days.
    pub fn due_by(&self) -> &'static str {
        pick(self.is_zh(), "截止", "due")
    }

    /// What a key does, for the help overlay.
    pub fn cmd(&self, cmd: Cmd) -> &'static str {
        let zh = self.is_zh();
        match cmd {
            Cmd::Quit => pick(zh, "退出", "quit"),
            Cmd::Help => pick(zh, "显示/隐藏帮助", "show/hide this help"),
            Cmd::Acknowledge => pick(zh, "确认（认领）案例", "acknowledge (claim) case"),
            Cmd::MySteps => pick(zh, "我的待办（所有案例）", "my steps (all cases)"),
            Cmd::OpenAlarm => pick(zh, "打开最新高危预警", "open the newest alarm"),
            Cmd::DismissEscalations => pick(zh, "已知悉升级提醒", "dismiss escalations"),
            Cmd::Up => pick(zh, "上移", "up"),
            Cmd::Down => pick(zh, "下移", "down"),
            Cmd::PageUp => pick(zh, "上翻一页", "page up"),
            Cmd::PageDown => pick(zh, "下翻一页", "page down"),
            Cmd::First => pick(zh, "第一个", "first"),
            Cmd::Last => pick(zh, "最后一个", "last"),
            Cmd::Open => pick(zh, "打开案例", "open the case"),
            Cmd::Back => pick(zh, "返回列表", "back to the list"),
            Cmd::Search => pick(zh, "搜索案例号/学号/班级", "search: case, student, class"),
            Cmd::FilterLevel => pick(zh, "级别筛选（循环）", "level filter (cycles)"),
            Cmd::FilterStatus => pick(zh, "状态筛选（循环）", "status filter (cycles)"),
            Cmd::FilterCategory => pick(zh, "类别筛选（循环）", "category filter (cycles)"),
            Cmd::FilterSchool => pick(zh, "学校筛选（循环）", "school filter (cycles)"),
            Cmd::FilterMine => pick(zh, "只看我的案例", "only my cases"),
            Cmd::FilterDrills => pick(zh, "真实/演练筛选（循环）", "real/drill filter (cycles)"),
            Cmd::ClearFilters => pick(zh, "清除所有筛选和搜索", "clear filters and search"),
            Cmd::Sort => pick(zh, "切换排序", "change the sort"),
            Cmd::DoStep => pick(zh, "执行所选步骤", "do the selected step"),
            Cmd::SkipStep => pick(zh, "跳过步骤（需原因）", "skip the step (reason)"),
            Cmd::ToggleRoles => pick(zh, "本角色 / 全部角色", "my role / all roles"),
            Cmd::AddPlaybook => pick(zh, "添加预案", "add a playbook"),
            Cmd::CloseCase => pick(zh, "结案", "close the case"),
            Cmd::Reveal => pick(
                zh,
                "显示身份（需理由，留审计）",
                "reveal identity (audited)",
            ),
            Cmd::ScrollDown => pick(zh, "案例信息下滚", "scroll case facts down"),
            Cmd::ScrollUp => pick(zh, "案例信息上滚", "scroll case facts up"),
            Cmd::ToggleHistory => pick(
                zh,
                "清单 / 学生历史与量表趋势",
                "checklist / history, scores",
            ),
            Cmd::NextScale => pick(zh, "趋势图换下一个量表", "chart the next scale"),
            Cmd::OpenStepCase => pick(zh, "打开该步骤的案例", "open the step's case"),
            Cmd::Reports => pick(zh, "事件信息报告", "incident reports"),
            Cmd::Followups => pick(zh, "跟踪回访（逾期/今天/本周）", "follow-up check-ins"),
            Cmd::RecordCheckin => pick(zh, "记录所选回访", "record the check-in"),
            Cmd::SubmitReport => pick(zh, "上报本阶段（校领导）", "submit the next stage (leader)"),
            Cmd::AcceptReport => pick(zh, "接收待审阶段", "accept the stage under review"),
            Cmd::ReturnReport => pick(zh, "退回待审阶段（需原因）", "return the stage (reason)"),
            Cmd::District => pick(zh, "区级总览", "district view"),
            Cmd::Charts => pick(zh, "报告图表", "report charts"),
            Cmd::Refresh => pick(zh, "向中继重新获取", "ask the relay again"),
            Cmd::ChartPeriod => pick(zh, "统计期间（1/3/6/12个月）", "period (1/3/6/12 months)"),
            Cmd::ChartDrills => pick(zh, "含/不含演练", "with/without drills"),
            Cmd::StudentRecord => pick(zh, "学生档案（一生一档）", "student record (all cases)"),
            Cmd::FilterWhen => pick(zh, "到期筛选（循环）", "due filter (cycles)"),
        }
    }

    /// A command as a responder names it, for "sent" and "done" notices.
    pub fn op_name(&self, op: &CommandOp) -> &'static str {
        let zh = self.is_zh();
        match op {
            CommandOp::Acknowledge { .. } => pick(zh, "确认", "acknowledge"),
            CommandOp::Step { .. } => pick(zh, "步骤", "step"),
            CommandOp::AddPlaybook { .. } => pick(zh, "添加预案", "add playbook"),
            CommandOp::View { .. } => pick(zh, "查看", "view"),
            CommandOp::Reveal { .. } => pick(zh, "显示身份", "reveal identity"),
            CommandOp::Close { .. } => pick(zh, "结案", "close"),
            CommandOp::OpenReport { .. } => pick(zh, "开启事件报告", "open report"),
            CommandOp::SubmitReport { .. } => pick(zh, "上报", "submit report"),
            CommandOp::AcceptReport { .. } => pick(zh, "接收报告", "accept report"),
            CommandOp::ReturnReport { .. } => pick(zh, "退回报告", "return report"),
            CommandOp::ProposeLevel { .. } => pick(zh, "调整等级", "change level"),
            CommandOp::ConfirmLevel { .. } => pick(zh, "确认降级", "confirm lowering"),
            CommandOp::Monitor { .. } => pick(zh, "转入跟踪", "move to monitoring"),
            CommandOp::Reopen { .. } => pick(zh, "重新开案", "re-open"),
            CommandOp::Checkin { .. } => pick(zh, "回访记录", "check-in"),
            CommandOp::DistrictView {} => pick(zh, "区级总览", "district view"),
            CommandOp::PeriodCharts { .. } => pick(zh, "报告图表", "report charts"),
            CommandOp::Student { .. } => pick(zh, "学生档案", "student record"),
        }
    }

    /// A refusal in the console's language. The match is exhaustive, so a
    /// code added to [`RefusalCode`] cannot arrive without Chinese words.
    /// English consoles show the relay's own message (English, with the
    /// details), as does `Other`, a code newer than this console.
    pub fn refusal(&self, code: RefusalCode) -> Option<&'static str> {
        if !self.is_zh() {
            return None;
        }
        Some(match code {
            RefusalCode::AlreadyAcknowledged => "该案例已被他人确认",
            RefusalCode::CaseClosed => "该案例已结案，不能再记录",
            RefusalCode::UnknownCase => "没有这个案例",
            RefusalCode::Forbidden => "当前角色无权执行此操作",
            RefusalCode::WrongRole => "该步骤属于其他角色",
            RefusalCode::AlreadyDone => "该步骤已完成",
            RefusalCode::AlreadySkipped => "该步骤已被跳过",
            RefusalCode::InactiveBranch => "该步骤不适用（所选分支不同）",
            RefusalCode::Blocked => "需先完成前置步骤",
            RefusalCode::RequiredStepsOpen => "仍有必做步骤未完成",
            RefusalCode::AlreadyAttached => "该案例已有此预案",
            RefusalCode::ReasonRequired => "需要填写理由",
            RefusalCode::TextTooLong => "文字过长",
            RefusalCode::StoreUnavailable => "中继暂时无法保存，请重试",
            RefusalCode::Other => return None,
            RefusalCode::NameNotAllowed => "叙述中含有学生姓名：请改写为“该生”或案例号",
            RefusalCode::SubmitForbidden => "报告由校领导提交",
            RefusalCode::ApprovalForbidden => "报告由教育局/区心理中心接收或退回",
            RefusalCode::StageOutOfOrder => "请先提交前一阶段",
            RefusalCode::AlreadySubmitted => "该阶段已上报，等待教育局审核",
            RefusalCode::AlreadyAccepted => "该阶段已被接收",
            RefusalCode::NotSubmitted => "该阶段不在待审状态",
            RefusalCode::NoReport => "该案例没有事件信息报告",
        })
    }

    /// Why the relay refused, as the notice line says it: our words for a
    /// code we know, else the relay's message, which is untrusted text.
    pub fn refusal_of(&self, error: &ErrorDetail) -> String {
        self.refusal(RefusalCode::parse(&error.code))
            .map(str::to_string)
            .unwrap_or_else(|| crate::text::inert(&error.message))
    }

    /// A refused answer in words; a refusal without a reason says only
    /// that it was refused.
    pub fn refusal_words(&self, result: &CommandResult) -> String {
        match &result.error {
            Some(e) => self.refusal_of(e),
            None => self.refused.to_string(),
        }
    }

    /// A span of seconds, short: `12秒`, `3分钟`, `2小时` / `12s`, `3m`, `2h`.
    pub fn secs(&self, secs: i64) -> String {
        let secs = secs.max(0);
        let (n, unit) = match secs {
            s if s < 60 => (s, pick(self.is_zh(), "秒", "s")),
            s if s < 3600 => (s / 60, self.ago_minutes),
            s if s < 86_400 => (s / 3600, self.ago_hours),
            s => (s / 86_400, self.ago_days),
        };
        format!("{n}{unit}")
    }

    /// "3秒前" / "3s ago".
    pub fn ago(&self, secs: i64) -> String {
        if self.is_zh() {
            format!("{}前", self.secs(secs))
        } else {
            format!("{} ago", self.secs(secs))
        }
    }

    /// "3 actions waiting to send" / "3 项操作待发送".
    pub fn actions_waiting(&self, n: usize) -> String {
        if self.is_zh() {
            format!("{n} 项操作待发送")
        } else if n == 1 {
            "1 action waiting to send".to_string()
        } else {
            format!("{n} actions waiting to send")
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

    pub(crate) fn is_zh(&self) -> bool {
        std::ptr::eq(self, &ZH)
    }

    /// Whether this is the Chinese catalogue (for text that comes in both
    /// languages, such as a rule's labels).
    pub fn lang_is_zh(&self) -> bool {
        self.is_zh()
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
    conn_retry: "重试于",
    conn_refused: "被中继拒绝",
    help_hint: "? 帮助  q 退出",
    help_title: "按键",
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
    refused: "未执行",
    ago_minutes: "分钟",
    ago_hours: "小时",
    ago_days: "天",
    ago_now: "刚刚",
    sent: "已发送",
    done: "已完成",
    prompt_empty: "不能为空",
    prompt_pick_number: "请输入列表中的序号",
    prompt_bad_time: "时间格式：+2h、+30m、+1d 或 2026-11-21 09:00",
    prompt_hint: "Enter 提交 · Esc 取消",
    ask_skip: "跳过原因（必填）",
    ask_note: "记录内容",
    ask_choice: "选择序号",
    ask_contact: "联系结果：1 已联系上 · 2 无人接听 · 3 拒绝",
    ask_referral_institution: "转介机构",
    ask_referral_time: "预约时间（+2h 或 2026-11-21 09:00）",
    ask_add_playbook: "添加预案（序号）",
    ask_close_outcome: "结案结果（序号）",
    ask_close_reason: "仍有必做步骤时的结案理由（校领导；无则留空）",
    ask_reveal: "显示学生身份的理由（将记入审计）",
    identity_hidden: "身份已隐藏 · r 显示（需理由，留审计）",
    my_steps_title: "我的待办",
    checklist_title: "处置清单",
    all_roles_hint: "t 切换：仅本角色 / 全部角色",
    no_steps: "没有待办步骤",
    no_checklist: "该案例尚无处置预案（p 添加）",
    col_due: "时限",
    col_step: "步骤",
    col_role: "角色",
    overdue: "超时",
    attempts_exhausted: "多次未联系上",
    required_mark: "必做",
    escalated: "升级",
    escalation_dismiss: "e 已知悉",
    unknown_who: "身份待确认",
    history_reset: "中继数据与本机不一致，已重新加载",
    my_overdue: "我的超时",
    conn_stale: "连接无响应",
    conn_offline: "离线",
    data_age: "数据",
    data_never: "尚无数据",
    notify_unavailable: "桌面通知不可用（无通知服务：无 D-Bus、SSH 或无图形界面）；新预警仍以响铃和横幅提示",
    note_new_case: "新高危预警",
    note_escalation: "升级：步骤超时",
    note_open_console: "详情请在值守台查看",
    alarm_new: "新高危",
    alarm_keys: "n 打开 · a 确认",
    filter_title: "筛选",
    filter_hint: "/ 搜索 · l 级别 u 状态 c 类别 h 学校 i 我的 d 演练 · x 清除 o 排序",
    filter_level_key: "≥重点",
    filter_level_high: "≥高危",
    filter_level_imminent: "仅紧急",
    filter_unacked: "待确认",
    filter_acked: "已确认",
    filter_mine: "我的",
    filter_real_only: "仅真实",
    filter_drills_only: "仅演练",
    search_label: "搜索",
    search_hint: "输入案例号、学号或班级 · Enter 保留 · Esc 清除",
    sort_urgency: "紧急 > 级别 > 最早",
    sort_newest: "最新开案",
    sort_updated: "最近更新",
    sort_case_id: "案例号",
    sort_label: "排序",
    shown_of: "显示",
    no_match: "没有符合筛选条件的案例（x 清除筛选）",
    tab_checklist: "处置清单",
    tab_history: "学生历史",
    tab_hint: "Tab 切换",
    history_cases: "该学生的其他案例",
    history_none: "本控制台未见过该学生的其他案例",
    history_alerts: "本案预警",
    scores_title: "量表得分趋势",
    scores_none: "暂无量表得分（信号中无 scale）",
    scores_next: "i 下一个量表",
    closed_as: "结案",
    alerts_n: "条预警",
    seq_label: "序号",
    help_view_keys: "本页按键",
    help_global_keys: "任何页面",
    help_close: "任意键关闭",
    sending: "正在发送…",
    detail_why: "依据",
    why_rule: "规则",
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
    conn_retry: "retry in",
    conn_refused: "refused by relay",
    help_hint: "? help  q quit",
    help_title: "Keys",
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
    refused: "not done",
    ago_minutes: "m",
    ago_hours: "h",
    ago_days: "d",
    ago_now: "now",
    sent: "sent",
    done: "done",
    prompt_empty: "must not be empty",
    prompt_pick_number: "type a number from the list",
    prompt_bad_time: "time as +2h, +30m, +1d or 2026-11-21 09:00",
    prompt_hint: "Enter submit · Esc cancel",
    ask_skip: "Reason for skipping (required)",
    ask_note: "Note",
    ask_choice: "Choose a number",
    ask_contact: "Outcome: 1 reached · 2 no answer · 3 refused",
    ask_referral_institution: "Referred to (institution)",
    ask_referral_time: "Appointment (+2h or 2026-11-21 09:00)",
    ask_add_playbook: "Add playbook (number)",
    ask_close_outcome: "Close with outcome (number)",
    ask_close_reason: "Override reason if required steps are open (leader; else empty)",
    ask_reveal: "Why you need the student's identity (audited)",
    identity_hidden: "identity hidden · r to reveal (reason, audited)",
    my_steps_title: "My steps",
    checklist_title: "Checklist",
    all_roles_hint: "t: my role / all roles",
    no_steps: "No open steps",
    no_checklist: "No playbook on this case yet (p adds one)",
    col_due: "Due",
    col_step: "Step",
    col_role: "Role",
    overdue: "OVERDUE",
    attempts_exhausted: "unreachable",
    required_mark: "req",
    escalated: "ESCALATED",
    escalation_dismiss: "e dismiss",
    unknown_who: "signing in",
    history_reset: "relay history differs from ours; reloaded",
    my_overdue: "my overdue",
    conn_stale: "no word from relay",
    conn_offline: "offline",
    data_age: "data",
    data_never: "no data yet",
    notify_unavailable: "desktop notifications unavailable (no notification service: no D-Bus, SSH or headless); new alerts still ring the bell and show a banner",
    note_new_case: "New high-risk alert",
    note_escalation: "Escalation: step overdue",
    note_open_console: "details in the duty console",
    alarm_new: "NEW HIGH RISK",
    alarm_keys: "n open · a acknowledge",
    filter_title: "Filter",
    filter_hint: "/ search · l level u status c category h school i mine d drill · x clear o sort",
    filter_level_key: "≥key",
    filter_level_high: "≥high",
    filter_level_imminent: "imminent only",
    filter_unacked: "unacked",
    filter_acked: "acked",
    filter_mine: "mine",
    filter_real_only: "real only",
    filter_drills_only: "drills only",
    search_label: "search",
    search_hint: "case id, student id or class · Enter keep · Esc clear",
    sort_urgency: "imminent > level > oldest",
    sort_newest: "newest first",
    sort_updated: "recently updated",
    sort_case_id: "case id",
    sort_label: "sorted",
    shown_of: "shown",
    no_match: "No case matches the filter (x clears it)",
    tab_checklist: "Checklist",
    tab_history: "History",
    tab_hint: "Tab switches",
    history_cases: "Other cases of this student",
    history_none: "No other case of this student seen on this console",
    history_alerts: "Alerts in this case",
    scores_title: "Scale scores over time",
    scores_none: "No scale scores yet (no scale signals)",
    scores_next: "i next scale",
    closed_as: "closed",
    alerts_n: "alert(s)",
    seq_label: "seq",
    help_view_keys: "This view",
    help_global_keys: "Everywhere",
    help_close: "any key closes",
    sending: "sending…",
    detail_why: "Why",
    why_rule: "rule",
};

/// The student view (一生一档), the history tab's screenings, the
/// follow-ups view's filters and the 三个一 cadence.
impl Strings {
    pub fn student_title(&self) -> &'static str {
        pick(self.is_zh(), "学生档案（一生一档）", "Student record")
    }

    /// "按 心理老师 角色显示" / "as counselor sees it".
    pub fn student_as_role(&self, role: Role) -> String {
        if self.is_zh() {
            format!("按{}角色显示", self.role(role))
        } else {
            format!("as {} sees it", self.role(role))
        }
    }

    pub fn student_withheld(&self) -> &'static str {
        pick(self.is_zh(), "本角色不可见", "not shown to your role")
    }

    /// What the record says a role does not see, in the console's words;
    /// anything newer as the relay says it.
    pub fn withheld_item<'t>(&self, item: &'t str) -> &'t str {
        let zh = self.is_zh();
        match item {
            "other roles' notes" => pick(zh, "其他角色的记录", "other roles' notes"),
            "level-change reasons" => pick(zh, "等级调整理由", "level-change reasons"),
            "screening results" => pick(zh, "筛查结果", "screening results"),
            other => other,
        }
    }

    pub fn student_cases(&self) -> &'static str {
        pick(self.is_zh(), "案例", "Cases")
    }

    pub fn student_screenings(&self) -> &'static str {
        pick(self.is_zh(), "筛查结果", "Screenings")
    }

    pub fn student_upcoming(&self) -> &'static str {
        pick(self.is_zh(), "待做回访", "Check-ins due")
    }

    pub fn student_timeline(&self) -> &'static str {
        pick(
            self.is_zh(),
            "时间线（最新在前）",
            "Timeline (newest first)",
        )
    }

    pub fn student_loading(&self) -> &'static str {
        pick(
            self.is_zh(),
            "正在从中继读取学生档案…",
            "Reading the record from the relay…",
        )
    }

    pub fn student_offline(&self) -> &'static str {
        pick(
            self.is_zh(),
            "离线：连上中继后读取档案",
            "Offline: the record is read once the relay is back",
        )
    }

    pub fn student_refused(&self) -> &'static str {
        pick(
            self.is_zh(),
            "中继拒绝读取档案",
            "The relay refused the record",
        )
    }

    pub fn student_read_at(&self) -> &'static str {
        pick(self.is_zh(), "读取于", "read")
    }

    /// A timeline item's kind as the record names it.
    pub fn record_kind<'t>(&self, kind: &'t str) -> &'t str {
        let zh = self.is_zh();
        match kind {
            "alert" => pick(zh, "预警", "alert"),
            "case" => pick(zh, "案例", "case"),
            "step" => pick(zh, "步骤", "step"),
            "referral" => pick(zh, "转介", "referral"),
            "escalation" => pick(zh, "升级", "escalation"),
            "checkin" => pick(zh, "回访", "check-in"),
            "level" => pick(zh, "等级", "level"),
            "report" => pick(zh, "报告", "report"),
            "screening" => pick(zh, "筛查", "screening"),
            other => other,
        }
    }

    pub fn screening_invalid(&self) -> &'static str {
        pick(self.is_zh(), "无效，需重测", "invalid, re-test")
    }

    pub fn screening_not_flagged(&self) -> &'static str {
        pick(self.is_zh(), "未达预警", "not flagged")
    }

    /// A scale's total score, as a score id `total` is shown.
    pub fn score_total(&self) -> &'static str {
        pick(self.is_zh(), "总分", "total")
    }

    pub fn screening_plan(&self) -> &'static str {
        pick(self.is_zh(), "计划", "plan")
    }

    pub fn screenings_none(&self) -> &'static str {
        pick(self.is_zh(), "暂无筛查结果", "no screening results")
    }

    /// The history tab's hint while the record is read.
    pub fn screenings_loading(&self) -> &'static str {
        pick(self.is_zh(), "正在读取…", "reading…")
    }

    /// "回访 #3" / "check-in #3".
    pub fn checkin_number(&self, num: u32) -> String {
        if self.is_zh() {
            format!("回访 #{num}")
        } else {
            format!("check-in #{num}")
        }
    }

    pub fn followup_filter(&self) -> &'static str {
        pick(self.is_zh(), "筛选", "filter")
    }

    pub fn followup_mine(&self) -> &'static str {
        pick(self.is_zh(), "我的", "mine")
    }

    pub fn followup_sort(&self, sort: super::list::FollowupSort) -> &'static str {
        use super::list::FollowupSort;
        let zh = self.is_zh();
        match sort {
            FollowupSort::Due => pick(zh, "按到期", "by due"),
            FollowupSort::Level => pick(zh, "按级别", "by level"),
            FollowupSort::School => pick(zh, "按学校", "by school"),
        }
    }

    pub fn followup_no_match(&self) -> &'static str {
        pick(
            self.is_zh(),
            "没有符合筛选的回访（x 清除筛选）",
            "No check-in matches the filter (x clears it)",
        )
    }

    /// The monthly 特别关注 review line of the 三个一 cadence.
    pub fn cadence_review(&self, month: &str, due: u32, total: u32) -> String {
        if self.is_zh() {
            format!("三个一 · 本月（{month}）特别关注复查：{due} 名待复查 / 共 {total} 名")
        } else {
            format!(
                "三个一 · this month ({month}): {due} of {total} students under 特别关注 due for review"
            )
        }
    }

    /// The dates line: next term screening and yearly census.
    pub fn cadence_dates(
        &self,
        term: Option<&str>,
        census: Option<&str>,
        calendars: u32,
    ) -> String {
        let none = pick(self.is_zh(), "未定", "none");
        let (term, census) = (term.unwrap_or(none), census.unwrap_or(none));
        match (self.is_zh(), calendars) {
            (true, 0) => format!("下次学期筛查 {term} · 新生普查 {census}（无校历，按默认）"),
            (true, n) => format!("下次学期筛查 {term} · 新生普查 {census}（{n} 所学校校历）"),
            (false, 0) => format!(
                "next term screening {term} · new-student census {census} (no calendars: the default)"
            ),
            (false, n) => format!(
                "next term screening {term} · new-student census {census} ({n} school calendars)"
            ),
        }
    }
}
