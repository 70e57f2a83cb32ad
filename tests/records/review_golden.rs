//! Post-incident review, period report and drill score over a database
//! built through the store at fixed times, so every output is exact.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use crisisdesk::playbook::Library;
use crisisdesk::protocol::{Alert, Command, Role};
use crisisdesk::review::{self, Format};
use crisisdesk::store::{Credential, Store};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_crisisdesk");

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T13:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn library() -> Library {
    crisisdesk::playbook::shipped::load(None).unwrap()
}

async fn cred(store: &Store, name: &str, role: Role) -> Credential {
    let token = store.create_credential(name, role).await.unwrap();
    store.authenticate(&token).await.unwrap().unwrap()
}

fn alert(v: Value) -> Alert {
    serde_json::from_value(v).unwrap()
}

async fn command(
    store: &Store,
    lib: &Library,
    who: &Credential,
    minutes: i64,
    id: &str,
    op: Value,
) {
    let mut v = op;
    v["id"] = json!(id);
    v["terminal"] = json!("duty-1");
    let cmd: Command = serde_json::from_value(v).unwrap();
    store
        .apply_command(who, &cmd, at(minutes), lib)
        .await
        .unwrap();
}

fn step(case: &str, step: &str, action: Value) -> Value {
    let mut v =
        json!({"op": "step", "case_id": case, "playbook": "imminent_suicide_risk", "step": step});
    for (k, x) in action.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// One night's imminent case worked by four people, a routine case, and a
/// drill that must stay out of real reports.
async fn night() -> (tempfile::TempDir, Store, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let store = Store::open(&url).await.unwrap();
    let lib = library();
    let feed = cred(&store, "screening-feed", Role::Producer).await;
    let wang = cred(&store, "王老师", Role::Counselor).await;
    let li = cred(&store, "李老师", Role::HeadTeacher).await;
    let zhang = cred(&store, "张校长", Role::Leader).await;

    let first = alert(json!({
        "id": "th-1", "source": "treehole", "category": "suicide_risk", "level": "high", "imminent": true,
        "student": {"id": "S1002", "name": "欧阳若曦", "school": "第三中学", "grade": "高一", "class": "(12)班"},
        "summary": "树洞：“今晚就结束吧” <script>alert(1)</script>\u{1b}[2J",
        "observed_at": "2026-11-20T20:58:00+08:00"
    }));
    store
        .ingest_alert(&first, &feed, at(0), &lib)
        .await
        .unwrap();
    let case = store.case_ids_opened(at(-1), at(1), false).await.unwrap()[0].clone();
    let follow = alert(json!({
        "id": "th-2", "source": "manual", "category": "suicide_risk", "level": "high",
        "student": {"id": "S1002"}, "summary": "家长电话无人接听",
        "observed_at": "2026-11-20T21:01:00+08:00"
    }));
    store
        .ingest_alert(&follow, &feed, at(1), &lib)
        .await
        .unwrap();

    command(
        &store,
        &lib,
        &wang,
        3,
        "w1",
        json!({"op": "acknowledge", "case_id": case}),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        4,
        "w2",
        json!({"op": "view", "case_id": case}),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        6,
        "w3",
        step(&case, "counselor_arrives", json!({"action": "complete"})),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        10,
        "w3b",
        step(&case, "counselor_on_scene", json!({"action": "complete"})),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        7,
        "l1",
        step(&case, "stay_with_student", json!({"action": "complete"})),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        7,
        "l0",
        step(
            &case,
            "guardian_safety",
            json!({"action": "choose", "option": "safe"}),
        ),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        8,
        "l2",
        step(
            &case,
            "guardian_call",
            json!({"action": "contact", "outcome": "no_answer"}),
        ),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        12,
        "w4",
        step(
            &case,
            "brief_assessment",
            json!({"action": "note", "text": "ASQ 阳性，有具体计划"}),
        ),
    )
    .await;
    store.escalate_overdue(at(16), &lib).await.unwrap();
    command(
        &store,
        &lib,
        &zhang,
        18,
        "z1",
        step(&case, "activate_team", json!({"action": "complete"})),
    )
    .await;
    command(
        &store,
        &lib,
        &zhang,
        19,
        "z2",
        step(&case, "call_120", json!({"action": "complete"})),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        20,
        "l3",
        step(
            &case,
            "guardian_call",
            json!({"action": "contact", "outcome": "reached"}),
        ),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        22,
        "w5",
        step(
            &case,
            "disposition",
            json!({"action": "choose", "option": "urgent"}),
        ),
    )
    .await;
    command(&store, &lib, &wang, 35, "w6", step(&case, "psychiatric_referral", json!({"action": "referral", "institution": "市精神卫生中心", "appointment": "2026-11-21T01:00:00Z"}))).await;
    command(&store, &lib, &zhang, 40, "z3", json!({"op": "close", "case_id": case, "outcome": "referred_out", "override_reason": "已转介专科，后续由复学预案跟进"})).await;

    let routine = alert(json!({
        "id": "sc-1", "source": "screening", "category": "suicide_risk", "level": "key",
        "student": {"id": "S2001", "name": "王小明", "school": "第一中学"},
        "observed_at": "2026-11-20T21:30:00+08:00"
    }));
    store
        .ingest_alert(&routine, &feed, at(30), &lib)
        .await
        .unwrap();
    command(
        &store,
        &lib,
        &wang,
        45,
        "w7",
        json!({"op": "acknowledge", "case_id": "C000002"}),
    )
    .await;

    let drill = alert(json!({
        "id": "dr-1", "status": "exercise", "exercise_id": "night-drill", "source": "hotline",
        "category": "suicide_risk", "level": "high", "imminent": true,
        "student": {"id": "DRILL-S1", "name": "演练学生", "school": "第三中学"},
        "observed_at": "2026-11-20T21:40:00+08:00"
    }));
    store
        .ingest_alert(&drill, &feed, at(40), &lib)
        .await
        .unwrap();
    command(
        &store,
        &lib,
        &wang,
        50,
        "w8",
        json!({"op": "acknowledge", "case_id": "C000003"}),
    )
    .await;
    command(&store, &lib, &li, 43, "l4", json!({"op": "step", "case_id": "C000003", "playbook": "imminent_suicide_risk", "step": "stay_with_student", "action": "complete"})).await;
    command(&store, &lib, &wang, 52, "w9", json!({"op": "step", "case_id": "C000003", "playbook": "imminent_suicide_risk", "step": "counselor_arrives", "action": "complete"})).await;
    (dir, store, case)
}

#[tokio::test]
async fn review_tells_the_whole_story() {
    let (_dir, store, case) = night().await;
    let r = review::build(&store, &library(), &case, None)
        .await
        .unwrap();
    assert_eq!(r.time_to_ack_secs, Some(180));
    assert_eq!(r.closed_at, Some(at(40)));
    assert_eq!(r.student.masked_name.as_deref(), Some("欧***"));
    let verdict = |id: &str| r.steps.iter().find(|s| s.step == id).unwrap().verdict;
    use review::Verdict::*;
    assert_eq!(verdict("counselor_arrives"), OnTime);
    assert_eq!(
        verdict("stay_with_student"),
        Late,
        "5-minute step done at 7"
    );
    assert_eq!(verdict("activate_team"), Late);
    assert_eq!(verdict("remove_means"), Missed, "never done before closing");
    assert_eq!(
        verdict("emergency_transfer"),
        NotApplicable,
        "branch not taken"
    );
    assert_eq!(r.contacts.len(), 2);
    assert_eq!(r.referrals[0].institution, "市精神卫生中心");
    assert!(!r.escalations.is_empty());
    assert_eq!(r.viewers.len(), 1);
    assert!(r.audit.chain_intact);
    assert!(!r.overridden.is_empty());
}

#[tokio::test]
async fn review_markdown_golden() {
    let (_dir, store, case) = night().await;
    let r = review::build(&store, &library(), &case, None)
        .await
        .unwrap();
    let md = review::render(&r, Format::Md, beijing());
    assert!(!md.contains("欧阳若曦"), "the review masks the name");
    assert!(!md.contains('\u{1b}'));
    insta::assert_snapshot!(md);
}

#[tokio::test]
async fn review_json_golden() {
    let (_dir, store, case) = night().await;
    let r = review::build(&store, &library(), &case, None)
        .await
        .unwrap();
    let json = review::render(&r, Format::Json, beijing());
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["time_to_ack_secs"], 180);
    insta::assert_snapshot!(json);
}

#[tokio::test]
async fn review_html_is_self_contained_well_formed_and_escaped() {
    let (_dir, store, case) = night().await;
    let r = review::build(&store, &library(), &case, None)
        .await
        .unwrap();
    let html = review::render(&r, Format::Html, beijing());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "has the swimlane chart");
    for lane in ["counselor 心理教师", "head teacher 班主任", "leader 校领导"] {
        assert!(html.contains(lane), "lane {lane}");
    }
    assert!(
        !html.to_lowercase().contains("<script"),
        "no scripts, and alert text is escaped"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Nothing is loaded from outside: the only URL is the SVG namespace.
    assert!(!html.contains("https://") && !html.contains("src="));
    assert_eq!(html.matches("http://").count(), 1);
    assert!(html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    check_balanced(&html);
    insta::assert_snapshot!(html);
}

/// Every element opened is closed, in order (void elements aside).
fn check_balanced(html: &str) {
    let void = ["meta", "br", "hr", "img", "input", "link", "!doctype"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect::<String>()
            .to_lowercase();
        if void.contains(&name.as_str()) || self_closing {
            continue;
        }
        if tag.starts_with('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "mismatched </{name}>"
            );
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[tokio::test]
async fn report_counts_real_cases_and_leaves_drills_out() {
    let (_dir, store, _case) = night().await;
    let lib = library();
    let real = review::report::build(&store, &lib, at(-60), at(24 * 60), false, None)
        .await
        .unwrap();
    assert_eq!(real.cases, 2, "the drill is not counted");
    assert_eq!(real.by_level.get("high"), Some(&1));
    assert_eq!(real.by_level.get("key"), Some(&1));
    assert_eq!(real.by_outcome.get("referred_out"), Some(&1));
    assert_eq!(real.acknowledged, 2);
    assert_eq!(real.time_to_ack_p50_secs, Some(180));
    assert_eq!(real.time_to_ack_p90_secs, Some(15 * 60));
    assert_eq!(real.referrals, 1);
    assert!(real.escalations >= 1);
    assert!(!real.by_school.contains_key("(unknown)"));
    let with_drills = review::report::build(&store, &lib, at(-60), at(24 * 60), true, None)
        .await
        .unwrap();
    assert_eq!(with_drills.cases, 3);
    insta::assert_snapshot!(review::report::render(&real, Format::Md, beijing()));
}

#[tokio::test]
async fn drill_score_compares_deadlines_with_the_teams_times() {
    let (_dir, store, _case) = night().await;
    let score = review::drill::score(&store, &library(), "night-drill", Some(at(70)))
        .await
        .unwrap();
    assert_eq!(score.cases.len(), 1);
    assert!(score.expected > 5);
    assert_eq!(
        score.late, 1,
        "the counselor arrived 12 minutes in, against 10"
    );
    assert_eq!(
        score.on_time, 1,
        "the head teacher was with the student in 3 of 5 minutes"
    );
    assert!(score.missed > 0, "most steps were never done");
    assert!(score.score < 50);
    insta::assert_snapshot!(review::drill::render(&score, Format::Md, beijing()));
    // The page has the Markdown's sections as real tables, not its lines.
    let html = review::drill::render(&score, Format::Html, beijing());
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
    assert!(html.contains("<h1>Drill score 演练评分 <code>night-drill</code>:"));
    assert!(html.contains("<td class=\"alarm\">LATE 超时完成</td>"));
    assert!(!html.contains("|---"), "no Markdown left in the page");
    assert_eq!(
        html.matches("<table>").count(),
        score.cases.len() + usize::from(!score.scenario_expectations.is_empty())
    );
    check_balanced(&html);
}

#[tokio::test]
async fn unknown_case_and_unknown_drill_say_so_and_exit_1() {
    let (dir, store, _case) = night().await;
    store.close().await;
    let db = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    for args in [vec!["review", "C999999"], vec!["review", "--drill", "nope"]] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .args(["--db", &db])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no case") || err.contains("no cases"), "{err}");
    }
    let out = std::process::Command::new(BIN)
        .args([
            "review",
            "C000001",
            "--db",
            &db,
            "--format",
            "html",
            "--utc-offset",
            "+08:00",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

/// A screening case opened the day before the National Day week at a school
/// with a calendar, and one at a school without: the review shows each
/// school-day limit as the console does, the due time after the holiday
/// for the first, and that the second was counted on weekdays.
#[tokio::test]
async fn review_shows_school_day_limits_and_their_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let store = Store::open(&url).await.unwrap();
    let lib = library();
    let calendar = include_str!("../../calendars/example.toml").replace("示例一中", "第一中学");
    assert_eq!(
        store.load_calendar(&calendar).await.unwrap(),
        Ok("第一中学".to_string())
    );
    let feed = cred(&store, "screening-feed", Role::Producer).await;
    // Wednesday 30 September 2026, 10:00 at +08:00.
    let opened = DateTime::parse_from_rfc3339("2026-09-30T10:00:00+08:00")
        .unwrap()
        .with_timezone(&Utc);
    for (id, student, school) in [("sd-1", "S2001", "第一中学"), ("sd-2", "S2002", "第二中学")]
    {
        let a = alert(json!({
            "id": id, "source": "screening", "category": "suicide_risk", "level": "key",
            "student": {"id": student, "school": school},
            "observed_at": "2026-09-30T09:40:00+08:00"
        }));
        store.ingest_alert(&a, &feed, opened, &lib).await.unwrap();
    }
    let cases = store
        .case_ids_opened(
            opened - Duration::minutes(1),
            opened + Duration::minutes(1),
            false,
        )
        .await
        .unwrap();
    assert_eq!(cases.len(), 2);
    let mut lines = Vec::new();
    for case in &cases {
        let r = review::build(&store, &lib, case, None).await.unwrap();
        let interview = r.steps.iter().find(|s| s.step == "interview").unwrap();
        let md = review::render(&r, Format::Md, beijing());
        let line = md
            .lines()
            .find(|l| l.contains("(interview)"))
            .unwrap_or_else(|| panic!("no interview row:\n{md}"))
            .to_string();
        lines.push((interview.limit_en.clone(), line));
    }
    lines.sort();
    assert_eq!(
        lines[0].0.as_deref(),
        Some("1 school day"),
        "counted on the school's calendar"
    );
    assert!(
        lines[0]
            .1
            .contains("2026-10-08 18:00:00 (1 个上学日 · 默认时限)"),
        "the first school day after the holiday: {}",
        lines[0].1
    );
    assert_eq!(
        lines[1].0.as_deref(),
        Some("1 school day · counted as weekdays (no school calendar)")
    );
    assert!(
        lines[1]
            .1
            .contains("2026-10-01 18:00:00 (1 个上学日 · 按工作日计（未配置校历） · 默认时限)"),
        "{}",
        lines[1].1
    );
}
