//! `crisisdesk demo`: the whole loop in one process with no set-up. A relay
//! on a free loopback port over a SQLite file, a feed of realistic *drill*
//! alerts (status `exercise`), and the console signed in as a demo
//! counselor. Everything the demo creates is marked as a drill.
//!
//! The feed plays the shipped drill scenarios (`playbooks/drills/`, built
//! into the binary) one after another, compressed so each unfolds within a
//! minute or so, over a background of random alerts so the list is never
//! empty.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{Local, Utc};
use serde_json::json;

use crate::console::{self, ConsoleOptions, Lang};
use crate::drill::{self, Scenario};
use crate::playbook;
use crate::protocol::{Alert, AlertStatus, Category, Level, Role, Source, Student};
use crate::relay::{self, Relay};
use crate::store::{Credential, Store};

/// Background alerts the feed raises at start, then one every few seconds
/// up to the cap.
const INITIAL_ALERTS: usize = 5;
const MAX_ALERTS: usize = 60;
const BACKGROUND_PAUSE_MS: std::ops::Range<u64> = 6000..12_000;

/// How much faster than real time the demo plays scenarios: a scenario
/// minute every six seconds, so a ten-minute drill unfolds in one.
const SCENARIO_SPEED: f64 = 10.0;
/// When the first scenario starts, and the pause between starts: 40 s keeps
/// the five shipped scenarios (the last one 12 scenario minutes long) within
/// four minutes.
const FIRST_SCENARIO: Duration = Duration::from_secs(3);
const SCENARIO_GAP: Duration = Duration::from_secs(40);

/// The per-user data directory for crisisdesk (e.g.
/// `~/.local/share/crisisdesk`), with the demo in its own folder.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    let base = crate::logging::default_dir().context("pass --data-dir DIR")?;
    Ok(base.join("demo"))
}

pub async fn run(dir: &Path, lang: Lang) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    // Each demo starts with a fresh drill; the previous run is kept once
    // beside it rather than deleted.
    let db = dir.join("demo.sqlite");
    if db.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", db.display()));
            let to = dir.join(format!("demo.previous.sqlite{suffix}"));
            if from.exists() {
                std::fs::rename(&from, &to)
                    .with_context(|| format!("cannot move {} aside", from.display()))?;
            }
        }
    }
    let store = Store::open(&format!("sqlite:{}", db.display())).await?;
    let feed_token = store.create_credential("demo-feed", Role::Producer).await?;
    let feed = store
        .authenticate(&feed_token)
        .await?
        .context("demo feed credential missing right after creation")?;
    let counselor_token = store
        .create_credential("demo-counselor", Role::Counselor)
        .await?;

    let library = playbook::shipped::load(None).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("built-in playbooks are invalid:\n{}", lines.join("\n"))
    })?;
    let relay = Relay::new(store, library);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(relay::serve(listener, relay.clone(), async {
        let _ = stopped.await;
    }));
    tracing::info!(%addr, db = %db.display(), "demo relay listening");

    let exercise_id = format!("demo-{}", Local::now().format("%Y%m%d-%H%M%S"));
    let feeder = tokio::spawn(run_feed(relay.clone(), feed, exercise_id.clone()));

    let result = console::run(ConsoleOptions {
        stream_urls: vec![format!("ws://{addr}/v1/stream")],
        token: counselor_token,
        lang,
        banner: Some(format!("demo {exercise_id}")),
        tls: None,
        // The demo starts a fresh drill each run; its actions need no disk.
        outbox: None,
    })
    .await;

    feeder.abort();
    let _ = stop.send(());
    let _ = server.await;
    relay.store().close().await;
    result
}

async fn run_feed(relay: std::sync::Arc<Relay>, credential: Credential, exercise_id: String) {
    let scenarios = match drill::shipped(relay.library()) {
        Ok(scenarios) => scenarios,
        Err(problems) => {
            // Tests keep the shipped set valid; a broken one still leaves
            // the demo running on background alerts.
            for p in &problems {
                tracing::error!(problem = %p, "shipped drill scenario is invalid");
            }
            Vec::new()
        }
    };
    tokio::join!(
        play_scenarios(&relay, &credential, &exercise_id, &scenarios),
        run_background(&relay, &credential, &exercise_id),
    );
}

/// One inject of one scenario, due this long after the feed starts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cue {
    due: Duration,
    scenario: usize,
    inject: usize,
}

/// Every inject of every scenario in the order the demo plays them: each
/// scenario starts `SCENARIO_GAP` after the one before, its timeline
/// compressed by `SCENARIO_SPEED`.
fn schedule(scenarios: &[Scenario]) -> Vec<Cue> {
    let mut cues: Vec<Cue> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(s, scenario)| {
            let start = FIRST_SCENARIO + SCENARIO_GAP * s as u32;
            scenario
                .injects
                .iter()
                .enumerate()
                .map(move |(i, inject)| Cue {
                    due: start + inject.at.scaled(SCENARIO_SPEED),
                    scenario: s,
                    inject: i,
                })
        })
        .collect();
    cues.sort_by_key(|c| c.due);
    cues
}

/// The alert the demo ingests for a cue: the scenario's alert under the
/// demo's exercise id, its id naming the scenario so several can share it.
fn scenario_alert(scenarios: &[Scenario], cue: Cue, exercise_id: &str) -> Alert {
    let scenario = &scenarios[cue.scenario];
    let id = format!("{exercise_id}-{}-{}", scenario.id, cue.inject + 1);
    let now = Utc::now().with_timezone(&Local).fixed_offset();
    scenario.alert(cue.inject, id, exercise_id, now, SCENARIO_SPEED)
}

async fn play_scenarios(
    relay: &Relay,
    credential: &Credential,
    exercise_id: &str,
    scenarios: &[Scenario],
) {
    let start = tokio::time::Instant::now();
    for cue in schedule(scenarios) {
        tokio::time::sleep_until(start + cue.due).await;
        let alert = scenario_alert(scenarios, cue, exercise_id);
        if let Err(err) = relay.ingest(&alert, credential).await {
            tracing::error!(error = %err, "demo feed could not store a drill inject");
        }
    }
}

async fn run_background(relay: &Relay, credential: &Credential, exercise_id: &str) {
    let mut rng = fastrand::Rng::new();
    let students = roster(&mut rng);
    for n in 0..MAX_ALERTS {
        let alert = drill_alert(&mut rng, &students, exercise_id, n);
        if let Err(err) = relay.ingest(&alert, credential).await {
            tracing::error!(error = %err, "demo feed could not store an alert");
        }
        if n + 1 >= INITIAL_ALERTS {
            tokio::time::sleep(Duration::from_millis(rng.u64(BACKGROUND_PAUSE_MS))).await;
        }
    }
}

struct DemoStudent {
    id: String,
    name: String,
    school: &'static str,
    grade: &'static str,
    class: String,
    under_14: bool,
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "马", "胡", "朱", "郭",
    "何", "林", "罗", "欧阳",
];
const GIVEN: &[&str] = &[
    "子涵", "浩然", "雨桐", "梓萱", "宇轩", "欣怡", "思远", "一诺", "俊杰", "佳琪", "博文", "诗涵",
    "晨曦", "若曦", "明轩", "嘉怡", "天佑", "可馨",
];
/// (school, grades, under 14)
const SCHOOLS: &[(&str, &[&str], bool)] = &[
    ("实验小学", &["四年级", "五年级", "六年级"], true),
    ("育才小学", &["五年级", "六年级"], true),
    ("第一中学", &["初一", "初二", "初三"], true),
    ("第三中学", &["高一", "高二", "高三"], false),
    ("师大附中", &["初三", "高一", "高二"], false),
    ("滨江职业技术学院", &["大一", "大二"], false),
];

fn roster(rng: &mut fastrand::Rng) -> Vec<DemoStudent> {
    (0..24)
        .map(|i| {
            let (school, grades, young) = SCHOOLS[rng.usize(..SCHOOLS.len())];
            DemoStudent {
                id: format!("DEMO-S{:04}", 1001 + i),
                name: format!(
                    "{}{}",
                    SURNAMES[rng.usize(..SURNAMES.len())],
                    GIVEN[rng.usize(..GIVEN.len())]
                ),
                school,
                grade: grades[rng.usize(..grades.len())],
                class: format!("({})班", rng.u8(1..=12)),
                under_14: young && rng.bool(),
            }
        })
        .collect()
}

/// One kind of background alert: how it arrives, and what it says.
struct Background {
    source: Source,
    category: Category,
    level: Level,
    imminent: bool,
    summary: &'static str,
    signals: fn(&mut fastrand::Rng) -> Vec<serde_json::Value>,
}

const BACKGROUND: &[Background] = &[
    Background {
        source: Source::Screening,
        category: Category::SuicideRisk,
        level: Level::Key,
        imminent: false,
        summary: "心理普查：PHQ-9 总分偏高，第9题（自伤/轻生念头）选择“好几天”。",
        signals: |rng| {
            vec![
                json!({"kind": "scale", "instrument": "PHQ-9", "score": rng.u8(15..=19), "items": {"9": 1}}),
            ]
        },
    },
    Background {
        source: Source::Screening,
        category: Category::SuicideRisk,
        level: Level::High,
        imminent: false,
        summary: "UPI 普查：第25题“想轻生”选择“是”，属第一类筛查对象。",
        signals: |rng| {
            vec![
                json!({"kind": "scale", "instrument": "UPI", "score": rng.u8(25..=40), "items": {"25": 1}}),
            ]
        },
    },
    Background {
        source: Source::Treehole,
        category: Category::SuicideRisk,
        level: Level::High,
        imminent: true,
        summary: "树洞匿名帖：“今晚就结束吧，药已经攒够了。”发帖定位为本校宿舍区。",
        signals: |_| vec![json!({"kind": "text", "channel": "树洞", "match": "结束/药"})],
    },
    Background {
        source: Source::Hotline,
        category: Category::SuicideRisk,
        level: Level::High,
        imminent: true,
        summary: "心理援助热线转介：来电学生称正在教学楼天台，情绪激动，通话中断。",
        signals: |_| vec![json!({"kind": "call", "line": "12356", "duration_s": 240})],
    },
    Background {
        source: Source::TeacherReport,
        category: Category::SelfHarm,
        level: Level::High,
        imminent: false,
        summary: "班主任发现学生前臂有新鲜划痕，学生否认并回避交流，近期情绪低落。",
        signals: |_| vec![json!({"kind": "observation", "by": "head_teacher"})],
    },
    Background {
        source: Source::Behavior,
        category: Category::AcuteDistress,
        level: Level::General,
        imminent: false,
        summary: "连续多日未在食堂就餐，图书馆门禁记录中断，上课迟到增多。",
        signals: |rng| {
            vec![
                json!({"kind": "attendance", "days_absent_canteen": rng.u8(4..=9), "late_count": rng.u8(2..=6)}),
            ]
        },
    },
    Background {
        source: Source::PeerTip,
        category: Category::ViolenceThreat,
        level: Level::Key,
        imminent: false,
        summary: "同学反映其在班级群中称“要让他们付出代价”，并提到带刀。",
        signals: |_| vec![json!({"kind": "text", "channel": "班级群"})],
    },
    Background {
        source: Source::ParentReport,
        category: Category::Bullying,
        level: Level::Key,
        imminent: false,
        summary: "家长来电：孩子近两周拒绝上学，称被同宿舍同学孤立和辱骂。",
        signals: |_| vec![json!({"kind": "call", "from": "guardian"})],
    },
    Background {
        source: Source::TeacherReport,
        category: Category::TraumaBereavement,
        level: Level::Key,
        imminent: false,
        summary: "学生父亲日前意外去世，今日返校，课堂上多次哭泣、无法集中注意力。",
        signals: |_| vec![json!({"kind": "life_event", "event": "bereavement"})],
    },
    Background {
        source: Source::SelfReferral,
        category: Category::AcuteDistress,
        level: Level::General,
        imminent: false,
        summary: "学生主动预约咨询，自述考试焦虑、失眠两周。",
        signals: |rng| {
            vec![json!({"kind": "scale", "instrument": "GAD-7", "score": rng.u8(10..=14)})]
        },
    },
];

fn drill_alert(
    rng: &mut fastrand::Rng,
    students: &[DemoStudent],
    exercise_id: &str,
    n: usize,
) -> Alert {
    let scenario = &BACKGROUND[rng.usize(..BACKGROUND.len())];
    let student = &students[rng.usize(..students.len())];
    let observed = Utc::now() - chrono::Duration::minutes(rng.i64(0..20));
    Alert {
        id: format!("{exercise_id}-{n:04}"),
        status: AlertStatus::Exercise,
        exercise_id: Some(exercise_id.to_string()),
        source: scenario.source,
        category: scenario.category,
        level: scenario.level,
        imminent: scenario.imminent,
        student: Student {
            id: student.id.clone(),
            name: Some(student.name.clone()),
            school: Some(student.school.to_string()),
            grade: Some(student.grade.to_string()),
            class: Some(student.class.clone()),
            under_14: Some(student.under_14),
        },
        summary: Some(scenario.summary.to_string()),
        signals: (scenario.signals)(rng),
        observed_at: observed.with_timezone(&Local).fixed_offset(),
        route: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::validate_alert;

    #[test]
    fn drill_alerts_are_valid_and_marked_as_exercise() {
        let mut rng = fastrand::Rng::with_seed(7);
        let students = roster(&mut rng);
        let mut levels = std::collections::HashSet::new();
        let mut categories = std::collections::HashSet::new();
        for n in 0..200 {
            let a = drill_alert(&mut rng, &students, "demo-x", n);
            validate_alert(&a).unwrap();
            assert_eq!(a.status, AlertStatus::Exercise);
            assert_eq!(a.exercise_id.as_deref(), Some("demo-x"));
            levels.insert(a.level);
            categories.insert(a.category);
        }
        assert_eq!(levels.len(), 3, "all levels appear");
        assert!(categories.len() >= 5, "several categories appear");
    }

    fn shipped() -> Vec<Scenario> {
        let library = crate::playbook::shipped::load(None).unwrap();
        drill::shipped(&library).unwrap()
    }

    #[test]
    fn the_feed_plays_every_shipped_scenario_within_a_few_minutes() {
        let scenarios = shipped();
        assert!(scenarios.len() >= 3);
        let cues = schedule(&scenarios);
        let injects: usize = scenarios.iter().map(|s| s.injects.len()).sum();
        assert_eq!(cues.len(), injects, "every inject is played once");
        assert!(cues.windows(2).all(|w| w[0].due <= w[1].due));
        let last = cues.last().unwrap().due;
        assert!(
            last <= Duration::from_secs(4 * 60),
            "the last inject comes after {last:?}"
        );
        // Staggered: each scenario opens after the one before it.
        let opening = |s: usize| cues.iter().find(|c| c.scenario == s).unwrap().due;
        for s in 1..scenarios.len() {
            assert!(opening(s) > opening(s - 1));
        }
    }

    #[test]
    fn scenario_alerts_are_valid_drill_alerts_under_the_demo_exercise() {
        let scenarios = shipped();
        let mut ids = std::collections::HashSet::new();
        for cue in schedule(&scenarios) {
            let a = scenario_alert(&scenarios, cue, "demo-x");
            validate_alert(&a).unwrap();
            assert_eq!(a.status, AlertStatus::Exercise);
            assert_eq!(a.exercise_id.as_deref(), Some("demo-x"));
            assert!(a.student.id.starts_with(drill::DRILL_STUDENT_PREFIX));
            assert!(ids.insert(a.id.clone()), "alert id {} is unique", a.id);
            let mark = drill::DrillMark::of(&a).expect("drill signal");
            assert_eq!(mark.scenario, scenarios[cue.scenario].id);
        }
    }
}
