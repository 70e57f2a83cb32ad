//! One student followed up over weeks, built through the store at fixed
//! times: the period report's follow-up figures (on-time rate, 干预有效率)
//! and `crisisdesk student show` (一生一档) per role, through the binary.

use std::process::Command as Process;

use chrono::{DateTime, Utc};
use crisisdesk::playbook::Library;
use crisisdesk::protocol::{Alert, Command, Role};
use crisisdesk::review;
use crisisdesk::store::{Credential, Store};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_crisisdesk");

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn cred(store: &Store, name: &str, role: Role) -> Credential {
    let token = store.create_credential(name, role).await.unwrap();
    store.authenticate(&token).await.unwrap().unwrap()
}

async fn command(store: &Store, lib: &Library, who: &Credential, at: &str, id: &str, op: Value) {
    let mut v = op;
    v["id"] = json!(id);
    let cmd: Command = serde_json::from_value(v).unwrap();
    let outcome = store.apply_command(who, &cmd, t(at), lib).await.unwrap();
    assert!(
        matches!(outcome, crisisdesk::store::CommandOutcome::Applied { .. }),
        "{id}: {outcome:?}"
    );
}

/// A high case opened Friday 2026-11-20 21:00 (+08:00), moved to monitoring
/// the same night (no school calendar: the Mon–Fri fallback), check-ins
/// 1–6 worked (2 late, 3 missed), lowered to key on 5 December with a
/// leader's sign-off, then a screening re-test.
async fn followed_up() -> (tempfile::TempDir, String, Store, Library) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("r.sqlite").display());
    let store = Store::open(&url).await.unwrap();
    let lib = crisisdesk::playbook::shipped::load(None).unwrap();
    let feed = cred(&store, "feed", Role::Producer).await;
    let wang = cred(&store, "王老师", Role::Counselor).await;
    let li = cred(&store, "李老师", Role::HeadTeacher).await;
    let zhang = cred(&store, "张校长", Role::Leader).await;
    let alert: Alert = serde_json::from_value(json!({
        "id": "s-1", "source": "teacher_report", "category": "suicide_risk", "level": "high",
        "student": {"id": "S2001", "name": "欧阳若曦", "school": "第三中学", "grade": "高一", "class": "(12)班"},
        "summary": "课堂作文流露轻生念头",
        "observed_at": "2026-11-20T20:58:00+08:00"
    }))
    .unwrap();
    store
        .ingest_alert(&alert, &feed, t("2026-11-20T13:00:00Z"), &lib)
        .await
        .unwrap();
    let case = "C000001";
    command(
        &store,
        &lib,
        &wang,
        "2026-11-20T13:05:00Z",
        "w1",
        json!({"op": "acknowledge", "case_id": case}),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        "2026-11-20T14:00:00Z",
        "w2",
        json!({"op": "monitor", "case_id": case}),
    )
    .await;
    let checkin = |n: u32, outcome: &str, note: &str| json!({"op": "checkin", "case_id": case, "checkin": n, "outcome": outcome, "note": note});
    // Due at 18:00 +08:00 (10:00Z) on 23, 24, 25, 26, 27 Nov; then 4 Dec.
    command(
        &store,
        &lib,
        &li,
        "2026-11-23T09:00:00Z",
        "l1",
        checkin(1, "seen_well", "班主任：早读正常"),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        "2026-11-24T12:00:00Z",
        "l2",
        checkin(2, "concern", "班主任：午饭没吃"),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        "2026-11-26T08:00:00Z",
        "l4",
        checkin(4, "seen_well", "班主任：和同学打球"),
    )
    .await;
    command(
        &store,
        &lib,
        &li,
        "2026-11-27T09:00:00Z",
        "l5",
        checkin(5, "seen_well", "班主任：平稳"),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        "2026-12-04T08:00:00Z",
        "w6",
        checkin(6, "seen_well", "咨询师：安全计划执行良好"),
    )
    .await;
    command(
        &store,
        &lib,
        &wang,
        "2026-12-05T02:00:00Z",
        "w7",
        json!({"op": "propose_level", "case_id": case, "level": "key", "reason": "咨询师：C-SSRS 复评无意念"}),
    )
    .await;
    command(
        &store,
        &lib,
        &zhang,
        "2026-12-05T03:00:00Z",
        "z1",
        json!({"op": "confirm_level", "case_id": case}),
    )
    .await;
    (dir, url, store, lib)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_period_report_shows_the_on_time_rate_and_intervention_effectiveness() {
    let (_dir, _url, store, lib) = followed_up().await;
    let checkins = store.checkins("C000001").await.unwrap();
    // 13 planned at high; the 7 after the lowering were cancelled and 5
    // monthly ones planned for key from 5 December.
    assert_eq!(checkins.len(), 6 + 5, "{checkins:?}");
    assert_eq!(
        checkins[6].due_at,
        t("2027-01-05T10:00:00Z"),
        "a month after the lowering"
    );

    let from = t("2026-11-01T00:00:00Z");
    let to = t("2026-12-01T00:00:00Z");
    // Eight weeks after the lowering (30 January) have passed by 1 February.
    let r = review::report::build(
        &store,
        &lib,
        from,
        to,
        false,
        Some(t("2027-02-01T00:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(r.cases, 1);
    // Due by then: 1–6 and the 5 January one; on time: 1, 4, 5, 6.
    assert_eq!((r.checkins_on_time, r.checkins_due), (4, 7));
    assert!((r.followup_on_time_rate.unwrap() - 4.0 / 7.0).abs() < 1e-9);
    assert_eq!(
        (
            r.effectiveness_effective,
            r.effectiveness_judged,
            r.effectiveness_pending
        ),
        (1, 1, 0)
    );
    assert_eq!(r.intervention_effective_rate, Some(1.0));
    assert!(
        r.follow_ups_done >= 5 && r.follow_ups_overdue >= 2 && r.follow_ups_open >= 4,
        "{r:?}"
    );
    let md = review::report::render(
        &r,
        review::Format::Md,
        chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
    );
    assert!(
        md.contains("| Follow-up check-ins on time 回访按时率 | 4 of 7 (57%) |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| Intervention effective 干预有效率 (down 8 weeks) | 1 of 1 (100%), 0 too recent |"
        ),
        "{md}"
    );
    let json = review::report::render(
        &r,
        review::Format::Json,
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["intervention_effective_rate"], 1.0);
    assert_eq!(v["checkins_due"], 7);
    let html = review::report::render(
        &r,
        review::Format::Html,
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    assert!(html.contains("回访按时率") && html.contains("4 of 7 (57%)"));

    // Two weeks after the lowering it is too early to tell.
    let early = review::report::build(
        &store,
        &lib,
        from,
        to,
        false,
        Some(t("2026-12-19T00:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(
        (early.effectiveness_judged, early.effectiveness_pending),
        (0, 1)
    );
    assert_eq!(early.intervention_effective_rate, None);

    // A new case for the student within the eight weeks undoes it.
    let feed = cred(&store, "feed-2", Role::Producer).await;
    let wang = cred(&store, "王老师2", Role::Leader).await;
    command(
        &store,
        &lib,
        &wang,
        "2026-12-10T00:00:00Z",
        "close",
        json!({"op": "close", "case_id": "C000001", "outcome": "stabilized", "override_reason": "转入常规关注"}),
    )
    .await;
    let again: Alert = serde_json::from_value(json!({
        "id": "s-2", "source": "peer_tip", "category": "self_harm", "level": "high",
        "student": {"id": "S2001"}, "observed_at": "2026-12-20T20:00:00+08:00"
    }))
    .unwrap();
    store
        .ingest_alert(&again, &feed, t("2026-12-20T12:00:00Z"), &lib)
        .await
        .unwrap();
    let undone = review::report::build(
        &store,
        &lib,
        from,
        to,
        false,
        Some(t("2027-02-01T00:00:00Z")),
    )
    .await
    .unwrap();
    assert_eq!(
        (undone.effectiveness_effective, undone.effectiveness_judged),
        (0, 1)
    );
}

fn show(url: &str, role: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Process::new(BIN)
        .args([
            "student",
            "show",
            "S2001",
            "--db",
            url,
            "--role",
            role,
            "--by",
            "审阅人",
        ])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn student_show_gives_one_timeline_per_role_with_identity_hidden() {
    let (_dir, url, store, _lib) = followed_up().await;
    store.close().await;

    let (ok, md, err) = show(&url, "counselor", &[]);
    assert!(ok, "{err}");
    assert!(md.contains("# Student record 一生一档 — S2001"), "{md}");
    assert!(md.contains("Initials: 欧**"), "{md}");
    assert!(!md.contains("欧阳若曦"), "the name only on reveal: {md}");
    assert!(
        md.contains("| C000001 | 2026-11-20 21:00:00 | key | monitoring |"),
        "{md}"
    );
    assert!(
        md.contains("咨询师：C-SSRS 复评无意念"),
        "a counselor reads reasons: {md}"
    );
    assert!(md.contains("班主任：午饭没吃"), "{md}");
    assert!(
        md.contains("[checkin]") && md.contains("[level]") && md.contains("[alert]"),
        "{md}"
    );
    // In order of time: the alert first, the confirmed lowering last.
    let alert_at = md.find("[alert]").unwrap();
    let lowered_at = md.find("(confirmed by 张校长 leader)").unwrap();
    assert!(alert_at < lowered_at, "{md}");
    assert!(md.contains("## Check-ins due"), "{md}");

    let (ok, json_text, err) = show(&url, "head_teacher", &["--format", "json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(v["role"], "head_teacher");
    assert!(v.get("identity").is_none());
    let text = v["timeline"].to_string();
    assert!(text.contains("班主任：午饭没吃"), "their own notes: {text}");
    assert!(
        !text.contains("咨询师：安全计划执行良好"),
        "not the counselor's notes: {text}"
    );
    assert!(!text.contains("C-SSRS 复评"), "not the reasons: {text}");
    assert!(text.contains("level high → key"), "{text}");
    assert!(
        v["withheld"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "screening results")
    );
    assert!(
        v["upcoming"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("note").is_none())
    );

    let (ok, _, err) = show(&url, "reviewer", &["--reveal", "复核"]);
    assert!(!ok);
    assert!(err.contains("a reviewer may not reveal"), "{err}");
    let (ok, md, err) = show(&url, "counselor", &["--reveal", "联系家长需核对姓名"]);
    assert!(ok, "{err}");
    assert!(md.contains("Name (revealed, audited): 欧阳若曦"), "{md}");
    let (ok, _, err) = show(&url, "producer", &[]);
    assert!(
        !ok && err.contains("a producer credential does not read student records"),
        "{err}"
    );

    let store = Store::open(&url).await.unwrap();
    let audit = store.audit_for_case("C000001").await.unwrap();
    let viewed = audit
        .iter()
        .filter(|e| e.kind == "case_viewed" && e.detail.contains("student show"))
        .count();
    assert_eq!(viewed, 3, "each reading of the record is audited");
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "identity_revealed" && e.detail.contains("联系家长需核对姓名"))
    );

    let out = Process::new(BIN)
        .args(["student", "show", "S9999", "--db", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no cases or screenings for student `S9999`")
    );
}
