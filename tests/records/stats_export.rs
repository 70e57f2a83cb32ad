//! `crisisdesk stats`: the bureau's statistics export read back from the
//! XLSX (calamine) and the CSV, over a record made by a real relay plus
//! screening results, with a drill that must not count as an incident.

use crate::common;

use std::process::Command;
use std::time::Duration;

use calamine::{Data, Reader};
use common::*;
use crisisdesk::protocol::Role;
use serde_json::{Value, json};

fn imminent(id: &str, student: &str, school: &str) -> Value {
    let mut a = alert(id, student, "high");
    a["imminent"] = json!(true);
    a["student"]["school"] = json!(school);
    a
}

async fn drain(ws: &mut Ws) {
    while next_json(ws, Duration::from_millis(300)).await.is_some() {}
}

async fn ok(ws: &mut Ws, cmd: Value) {
    let id = cmd["id"].as_str().unwrap().to_string();
    send_command(ws, cmd).await;
    let (r, _) = result_for(ws, &id).await;
    assert_eq!(r["ok"], true, "{r}");
}

/// Screening results written the way `screening import` stores them (the
/// import itself is tested in tests/screening/screening_import.rs).
async fn seed_screening(db_url: &str, school: &str, levels: &[Option<&str>], invalid: usize) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    sqlx::query(
        "INSERT OR IGNORE INTO screening_plans (id, name, scale, schools, starts_on, ends_on, threshold, created_at) \
         VALUES ('p1', '秋季普查', 'phq9', '[]', '2026-11-01', '2026-11-30', 'key', '2026-11-01T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let rows = levels
        .iter()
        .map(|l| (true, *l))
        .chain((0..invalid).map(|_| (false, None)));
    for (i, (valid, level)) in rows.enumerate() {
        sqlx::query(
            "INSERT INTO screening_results (plan_id, student_id, school, answered_at, row_hash, revision, \
             valid, level, scale_rule, scale_rule_version, scores, graded_at) \
             VALUES ('p1', ?, ?, '2026-11-20T09:00:00+08:00', 'h', 1, ?, ?, 'phq9', 1, '{}', '2026-11-20T01:00:00Z')",
        )
        .bind(format!("{school}-{i}"))
        .bind(school)
        .bind(valid)
        .bind(level)
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

fn cell(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The value of column `header` in the row whose first cell is `school`.
fn value(rows: &[Vec<String>], school: &str, header: &str) -> String {
    let col = rows[0]
        .iter()
        .position(|h| h == header)
        .unwrap_or_else(|| panic!("no column {header} in {:?}", rows[0]));
    rows.iter()
        .find(|r| r[0] == school)
        .unwrap_or_else(|| panic!("no row {school}"))[col]
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_per_school_and_total_read_back_from_xlsx_and_csv() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let leader = relay.token("li-leader", Role::Leader).await;
    let mut lws = connect(relay.addr, Some(&leader), 0).await.unwrap();

    // School one: an imminent case where 120 was called (an incident).
    let r = post_alert(&relay, &producer, &imminent("a1", "S1", "第一中学")).await;
    let case1 = r.body["case_id"].as_str().unwrap().to_string();
    // School two: a key-level case, closed with no risk found.
    let mut key = alert("a2", "S2", "key");
    key["student"]["school"] = json!("第二中学");
    let r = post_alert(&relay, &producer, &key).await;
    let case2 = r.body["case_id"].as_str().unwrap().to_string();
    // A drill at school one where 120 is "called" too: it is scored on the
    // drill sheet and never counts as a case or an incident.
    let mut drill = imminent("d1", "S9", "第一中学");
    drill["status"] = json!("exercise");
    drill["exercise_id"] = json!("night-drill");
    let r = post_alert(&relay, &producer, &drill).await;
    let drill_case = r.body["case_id"].as_str().unwrap().to_string();
    drain(&mut lws).await;
    for (id, case) in [("c1", &case1), ("c2", &drill_case)] {
        ok(
            &mut lws,
            json!({"type": "command", "id": id, "op": "step", "case_id": case,
                   "playbook": "imminent_suicide_risk", "step": "call_120", "action": "complete"}),
        )
        .await;
    }
    ok(
        &mut lws,
        json!({"type": "command", "id": "x", "op": "close", "case_id": case2,
               "outcome": "no_risk", "override_reason": "访谈后评估无风险"}),
    )
    .await;
    assert!(
        relay
            .relay
            .store()
            .incident_report(&drill_case)
            .await
            .unwrap()
            .unwrap()
            .drill
    );

    seed_screening(
        &relay.db_url,
        "第一中学",
        &[
            Some("general"),
            Some("key"),
            Some("high"),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
        1,
    )
    .await;
    seed_screening(
        &relay.db_url,
        "第二中学",
        &[Some("key"), None, None, None, None],
        0,
    )
    .await;

    let dir = relay.dir.path().to_path_buf();
    let xlsx = dir.join("stats.xlsx");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args([
                "stats",
                "--db",
                &relay.db_url,
                "--from",
                "2026-01-01",
                "--to",
                "2099-01-01",
                "--utc-offset",
                "+08:00",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--format", "xlsx", "--out", xlsx.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let rows: Vec<Vec<String>> = book
        .worksheet_range("学校统计")
        .unwrap()
        .rows()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    assert_eq!(rows[0][0], "学校");
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["学校", "第一中学", "第二中学", "合计"]
    );
    assert_eq!(value(&rows, "第一中学", "参测人数"), "10");
    assert_eq!(value(&rows, "第一中学", "有效人数"), "9");
    assert_eq!(value(&rows, "第一中学", "高危关注人数"), "1");
    // 3 flagged of 9 valid.
    assert_eq!(value(&rows, "第一中学", "心理问题发现率(%)"), "33.33");
    assert_eq!(
        value(&rows, "第一中学", "新开个案数"),
        "1",
        "the drill is not a case"
    );
    assert_eq!(
        value(&rows, "第一中学", "危机事件数"),
        "1",
        "the drill is not an incident"
    );
    // 1 incident among 10 students screened.
    assert_eq!(value(&rows, "第一中学", "危机事件发生率(每万人)"), "1000");
    assert_eq!(value(&rows, "第一中学", "应急演练次数"), "1");
    assert_eq!(value(&rows, "第二中学", "结案：评估无风险"), "1");
    assert_eq!(value(&rows, "第二中学", "危机事件数"), "0");
    assert_eq!(value(&rows, "第二中学", "危机事件发生率(每万人)"), "0");
    assert_eq!(value(&rows, "合计", "参测人数"), "15");
    assert_eq!(value(&rows, "合计", "新开个案数"), "2");
    assert_eq!(value(&rows, "合计", "结案数"), "1");
    assert_eq!(value(&rows, "合计", "危机事件数"), "1");
    // No case reached monitoring here: the follow-up rates are blank (no
    // denominator), never a made-up 0% (tests/records/followup.rs computes them).
    assert_eq!(value(&rows, "合计", "跟踪回访按时率(%)"), "");
    assert_eq!(value(&rows, "合计", "干预有效率(%)"), "");
    let drills: Vec<Vec<String>> = book
        .worksheet_range("应急演练")
        .unwrap()
        .rows()
        .map(|r| r.iter().map(cell).collect())
        .collect();
    assert_eq!(
        drills[0],
        ["演练日期", "演练编号", "演练场景", "参演学校", "得分"]
    );
    assert_eq!(drills.len(), 2);
    assert_eq!(drills[1][1], "night-drill");
    assert_eq!(drills[1][3], "第一中学");

    // CSV: UTF-8 with a BOM, the same figures, then the drills.
    let out = run(&["--format", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with("\u{feff}".as_bytes()));
    let text = String::from_utf8(out.stdout[3..].to_vec()).unwrap();
    let csv_rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(value(&csv_rows, "第一中学", "心理问题发现率(%)"), "33.33");
    assert_eq!(value(&csv_rows, "合计", "参测人数"), "15");
    assert!(csv_rows.iter().any(|r| r[0] == "演练日期"));
    assert!(
        csv_rows
            .iter()
            .any(|r| r.get(1).is_some_and(|c| c == "night-drill"))
    );

    // A district's own form: its columns, its headers, its order.
    let template = dir.join("form.toml");
    std::fs::write(
        &template,
        "sheet = \"表3\"\n[[columns]]\nkey = \"school\"\nheader = \"单位\"\n[[columns]]\nkey = \"incident_rate\"\nheader = \"发生率\"\n",
    )
    .unwrap();
    let out = run(&["--format", "csv", "--template", template.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.trim_start_matches('\u{feff}')
            .starts_with("单位,发生率\n第一中学,1000.00\n"),
        "{text}"
    );

    // A column the build does not know: refused, naming it.
    std::fs::write(&template, "[[columns]]\nkey = \"school\"\nheader = \"单位\"\n[[columns]]\nkey = \"suicide_count\"\nheader = \"x\"\n").unwrap();
    let out = run(&["--format", "csv", "--template", template.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `suicide_count`"), "{err}");
    relay.stop().await;
}
