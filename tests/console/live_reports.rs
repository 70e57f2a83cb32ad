//! Reporting upward between two real consoles over a real relay: the
//! school leader's console submits a report stage (a narrative with the
//! student's name is refused and shown), the district's console returns it
//! with a reason and then accepts it, and both consoles see every
//! transition; the district screen and the report charts fill from the
//! relay's answers. Each console is the real app fed by the real
//! connection task (`Supervisor`) over a websocket on 127.0.0.1.

use std::time::Duration;

use crate::common::*;
use crisisdesk::console::app::{Action, App};
use crisisdesk::console::connection::Supervisor;
use crisisdesk::console::{Effect, Lang};
use crisisdesk::protocol::{Command, Role};
use crisisdesk::reporting::{Stage, StageStatus};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;
use tokio::sync::mpsc;

/// A console: the app, and the channels of its connection task (also
/// used by `cadence_live.rs`).
pub(crate) struct Live {
    pub(crate) app: App,
    actions: mpsc::Receiver<Action>,
    commands: mpsc::Sender<Command>,
}

impl Live {
    pub(crate) fn start(relay: &TestRelay, token: String) -> Live {
        let (actions_tx, actions) = mpsc::channel(4096);
        let (commands, commands_rx) = mpsc::channel(256);
        tokio::spawn(
            Supervisor {
                stream_urls: vec![format!("ws://{}/v1/stream", relay.addr)],
                token,
                tls: None,
                actions: actions_tx,
                commands: commands_rx,
                outbox: None,
            }
            .run(),
        );
        let mut app = App::new(
            Lang::Zh,
            chrono::Utc::now(),
            chrono::FixedOffset::east_opt(8 * 3600).unwrap(),
        );
        app.alert_prefs.desktop = false;
        Live {
            app,
            actions,
            commands,
        }
    }

    pub(crate) async fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            if let Effect::Send(cmd) = effect {
                self.commands.send(cmd).await.expect("connection task");
            }
        }
        self.app.refresh();
    }

    pub(crate) async fn press(&mut self, code: KeyCode) {
        let effects = self
            .app
            .update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.run(effects).await;
    }

    pub(crate) async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(KeyCode::Char(c)).await;
        }
    }

    /// Feeds the app what its connection delivers until `done` holds.
    pub(crate) async fn until(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !done(&self.app) {
            let action = tokio::time::timeout_at(deadline, self.actions.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; notice {:?}", self.app.notice)
                })
                .expect("connection task alive");
            let effects = self.app.update(action);
            self.run(effects).await;
        }
    }

    pub(crate) fn screen(&self) -> String {
        crate::console_support::render(&self.app, 120, 40)
    }
}

fn status(app: &App, case_id: &str, stage: Stage) -> Option<StageStatus> {
    app.reports
        .get(case_id)
        .and_then(|r| r.stage(stage))
        .map(|s| s.status)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_console_submits_and_a_district_console_returns_then_accepts() {
    let relay = TestRelay::start().await;
    let producer = relay.token("feed", Role::Producer).await;
    let mut body = alert("a-1", "S1", "high");
    body["imminent"] = json!(true);
    let reply = post_alert(&relay, &producer, &body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let case_id = reply.body["case_id"].as_str().unwrap().to_string();
    let leader_token = relay.token("li-leader", Role::Leader).await;
    let district_token = relay.token("bureau", Role::District).await;

    // A 120 call opens the report (emergency_services).
    let mut ws = connect(relay.addr, Some(&leader_token), 0).await.unwrap();
    send_command(
        &mut ws,
        json!({"type": "command", "id": "call", "op": "step", "case_id": case_id,
               "playbook": "imminent_suicide_risk", "step": "call_120", "action": "complete"}),
    )
    .await;
    let (result, _) = result_for(&mut ws, "call").await;
    assert_eq!(result["ok"], true, "{result}");

    let mut leader = Live::start(&relay, leader_token);
    let mut district = Live::start(&relay, district_token);
    leader
        .until("the report on the leader's console", |a| {
            a.reports.contains_key(&case_id)
        })
        .await;
    district
        .until("the report on the district's console", |a| {
            a.reports.contains_key(&case_id)
        })
        .await;

    // The leader submits with the student's name in the narrative: refused,
    // and the prompt comes back with the text and the reason.
    leader.press(KeyCode::Char('R')).await;
    leader.press(KeyCode::Char('s')).await;
    leader.type_text("王小明已由120送医").await;
    leader.press(KeyCode::Enter).await;
    leader
        .until("the refusal", |a| a.report_actions.refusal.is_some())
        .await;
    let screen = leader.screen();
    assert!(screen.contains("叙述中含有学生姓名"), "{screen}");
    assert_eq!(
        leader.app.nav.prompt.as_ref().map(|p| p.input.as_str()),
        Some("王小明已由120送医")
    );
    // Reworded: the name out, 该生 in.
    leader.press(KeyCode::Esc).await;
    leader.press(KeyCode::Char('s')).await;
    leader.type_text("该生已由120送医").await;
    leader.press(KeyCode::Enter).await;
    leader
        .until("the first report submitted", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Submitted)
        })
        .await;
    assert!(
        leader.app.notice.as_deref().unwrap_or("").contains('✓'),
        "{:?}",
        leader.app.notice
    );

    // The district sees it awaiting review and returns it: first without a
    // reason (refused on the console), then with one.
    district
        .until("the submission on the district's console", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Submitted)
        })
        .await;
    district.press(KeyCode::Char('R')).await;
    assert!(
        district.screen().contains("待审报告 1"),
        "{}",
        district.screen()
    );
    district.press(KeyCode::Char('x')).await;
    district.press(KeyCode::Enter).await;
    assert!(
        district.screen().contains("退回须写明原因"),
        "{}",
        district.screen()
    );
    district.type_text("请补充送医时间").await;
    district.press(KeyCode::Enter).await;
    district
        .until("the return on the district's console", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Returned)
        })
        .await;
    leader
        .until("the return on the leader's console", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Returned)
        })
        .await;
    let screen = leader.screen();
    assert!(screen.contains("退回原因: 请补充送医时间"), "{screen}");
    assert!(screen.contains("已退回"), "{screen}");

    // Resubmitted and accepted; both see it.
    leader.press(KeyCode::Char('s')).await;
    leader.type_text("送医时间 13:12").await;
    leader.press(KeyCode::Enter).await;
    district
        .until("the resubmission", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Submitted)
        })
        .await;
    district.press(KeyCode::Char('y')).await;
    district
        .until("accepted on the district's console", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Accepted)
        })
        .await;
    leader
        .until("accepted on the leader's console", |a| {
            status(a, &case_id, Stage::First) == Some(StageStatus::Accepted)
        })
        .await;
    assert!(
        leader.screen().contains("首报 已接收"),
        "{}",
        leader.screen()
    );

    // The district screen: counts per school from the relay, no name.
    district.press(KeyCode::Char('D')).await;
    district
        .until("the district view", |a| a.district.view.is_some())
        .await;
    let screen = district.screen();
    assert!(screen.contains("第一中学"), "{screen}");
    assert!(
        !screen.contains("王小明") && !screen.contains("S1 "),
        "{screen}"
    );
    let view = district.app.district.view.as_ref().unwrap();
    assert_eq!(view.total.open_high, 1, "{view:?}");
    assert_eq!(view.total.open_imminent, 1, "{view:?}");

    // The leader's report charts: the period report's figures.
    leader.press(KeyCode::Char('P')).await;
    leader
        .until("the chart figures", |a| a.charts.figures.is_some())
        .await;
    let figures = leader.app.charts.figures.as_ref().unwrap();
    assert_eq!(figures.cases, 1, "{figures:?}");
    assert_eq!(figures.school_levels[0].school, "第一中学");
    assert_eq!(figures.school_levels[0].high, 1);
    assert!(
        leader.screen().contains("各校个案级别分布"),
        "{}",
        leader.screen()
    );

    // A role that may not ask is told so.
    let mut ws = connect(relay.addr, Some(&relay.token("zhou", Role::Nurse).await), 0)
        .await
        .unwrap();
    send_command(
        &mut ws,
        json!({"type": "command", "id": "q", "op": "district_view"}),
    )
    .await;
    let (result, _) = result_for(&mut ws, "q").await;
    assert_eq!(result["ok"], false);
    assert_eq!(result["error"]["code"], "forbidden");
    relay.stop().await;
}
