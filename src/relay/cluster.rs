//! A relay among several on one PostgreSQL database (issue 15, phase 2).
//!
//! The live channel of each relay is fed in `seq` order, dense, from one
//! place: the [`Feed`]. Its own writer offers what it just committed; when
//! that continues the feed (no other relay committed in between) it is
//! published at once, as on SQLite. Otherwise, and whenever the database
//! announces a commit (a NOTIFY from a trigger), the listener reconnects,
//! or a second passes (a NOTIFY that never came), the tailer reads
//! `events_after(last published)` from the database and publishes that.
//! `seq` comes from the counter row every writer locks, so commits become
//! visible in `seq` order and what a read returns is always a prefix of
//! what will be: no later read can turn up an event below one already
//! published.
//!
//! Leadership: the escalation scan, audit checkpoints and report deadlines
//! run on the relay that holds the cluster's advisory lock. The others try
//! for it every second, so a dead leader's work moves within seconds. On
//! SQLite there is no tailer and no lock: the one relay publishes directly
//! and always leads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use super::Relay;
use super::metrics::Metrics;
use crate::store::{EventListener, LeaderLock, Store, StoredEvent, Wake};

/// How often the tailer reads by `seq` even when no one announced
/// anything: the most a lost NOTIFY costs.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// How often leadership is checked (a leader) or tried for (a follower).
pub const LEADER_CHECK: Duration = Duration::from_secs(1);

/// Events read per query while the tailer catches up.
const TAIL_PAGE: i64 = 500;

/// Waits between attempts when the listener cannot reach the database.
const LISTENER_RETRY: Duration = Duration::from_secs(1);

/// The live channel's single entrance on PostgreSQL: publishes in `seq`
/// order, each event once.
pub struct Feed {
    live: broadcast::Sender<StoredEvent>,
    /// The last `seq` published; None until the tailer has read where the
    /// database stands (events before that are for replay, not live).
    last: Mutex<Option<i64>>,
    /// Wakes the tailer: a gap before our writer's events, a NOTIFY, a
    /// reconnected listener.
    wake: Notify,
}

impl Feed {
    fn new(live: broadcast::Sender<StoredEvent>) -> Feed {
        Feed {
            live,
            last: Mutex::new(None),
            wake: Notify::new(),
        }
    }

    fn last(&self) -> Option<i64> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What this relay's writer just committed, in `seq` order. Published
    /// now if it continues the feed; otherwise the tailer reads the gap
    /// (and these) from the database.
    pub fn committed<'a>(&self, events: impl IntoIterator<Item = &'a StoredEvent>) {
        let mut gap = false;
        {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            for event in events {
                match *last {
                    Some(l) if event.seq <= l => {}
                    Some(l) if event.seq == l + 1 && !gap => {
                        // No receivers is fine: nobody is watching yet.
                        let _ = self.live.send(event.clone().published_now());
                        *last = Some(event.seq);
                    }
                    _ => gap = true,
                }
            }
        }
        if gap {
            self.wake.notify_one();
        }
    }

    /// A page read from the database by `seq`: the store's order is the
    /// truth, so it is published past any hole (which the counter row
    /// makes impossible; a connection would fill one from the store).
    /// Returns how many were published.
    fn read(&self, page: &[StoredEvent]) -> usize {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut published = 0;
        for event in page {
            let after = last.unwrap_or(0);
            if event.seq <= after {
                continue;
            }
            if event.seq != after + 1 {
                tracing::error!(
                    after,
                    seq = event.seq,
                    "the stream read from the database skips numbers"
                );
            }
            let _ = self.live.send(event.clone().published_now());
            *last = Some(event.seq);
            published += 1;
        }
        published
    }
}

/// The tasks of a relay on a shared database; they end with the relay.
pub struct Tasks {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// On PostgreSQL: the feed and the tasks that keep it (tailer and
/// listener). None on SQLite.
pub fn start(
    store: &Store,
    live: &broadcast::Sender<StoredEvent>,
    deadlines_changed: Arc<Notify>,
    metrics: Arc<Metrics>,
) -> Option<(Arc<Feed>, Tasks)> {
    let listener = store.event_listener()?;
    let feed = Arc::new(Feed::new(live.clone()));
    let handles = vec![
        tokio::spawn(tail(
            store.clone(),
            feed.clone(),
            deadlines_changed,
            metrics.clone(),
        )),
        tokio::spawn(listen(listener, feed.clone(), metrics)),
    ];
    Some((feed, Tasks { handles }))
}

/// Reads by `seq` on every wake-up and every [`POLL_EVERY`], and publishes.
async fn tail(
    store: Store,
    feed: Arc<Feed>,
    deadlines_changed: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        match catch_up(&store, &feed).await {
            Ok(published) => {
                if failing {
                    tracing::info!("the stream is read from the database again");
                    failing = false;
                }
                if published > 0 {
                    metrics.tailed(published);
                    // Another relay's change may have moved the next step
                    // deadline; the scanner (if we lead) looks again.
                    deadlines_changed.notify_one();
                }
            }
            Err(err) => {
                // Once per outage, not once a second.
                if !failing {
                    tracing::error!(error = %err, "cannot read the stream from the database; retrying every second");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = poll.tick() => {}
            () = feed.wake.notified() => {}
        }
    }
}

/// Publishes everything committed after what the feed last published.
async fn catch_up(store: &Store, feed: &Feed) -> Result<usize, crate::store::StoreError> {
    if feed.last().is_none() {
        // Where the database stands when this relay starts: earlier events
        // reach consoles by replay.
        let head = store.latest_seq().await?;
        let mut last = feed.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none() {
            *last = Some(head);
        }
    }
    let mut published = 0;
    loop {
        let after = feed.last().unwrap_or(0);
        let page = store.events_after(after, TAIL_PAGE).await?;
        published += feed.read(&page);
        if (page.len() as i64) < TAIL_PAGE {
            return Ok(published);
        }
    }
}

/// Turns NOTIFYs (and reconnects of the listener) into wake-ups.
async fn listen(mut listener: EventListener, feed: Arc<Feed>, metrics: Arc<Metrics>) {
    let mut connected_once = false;
    let mut failing = false;
    loop {
        match listener.next().await {
            Ok(Wake::Announced(seq)) => {
                // Our own NOTIFY comes back too; what is published already
                // needs no read.
                if feed.last().is_none_or(|last| seq > last) {
                    feed.wake.notify_one();
                }
            }
            Ok(Wake::Listening) => {
                failing = false;
                if connected_once {
                    metrics.listener_reconnected();
                    tracing::info!("listening for other relays' commits again");
                }
                connected_once = true;
                // Whatever was announced while we were not listening.
                feed.wake.notify_one();
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "lost the listener for other relays' commits; reading every second meanwhile");
                    failing = true;
                }
                tokio::time::sleep(LISTENER_RETRY).await;
            }
        }
    }
}

/// Keeps `relay`'s leadership flag true while it holds the cluster's lock.
pub async fn lead(relay: Arc<Relay>, mut lock: LeaderLock) {
    let mut every = tokio::time::interval(LEADER_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let leads = match lock.check().await {
            Ok(leads) => leads,
            Err(err) => {
                if relay.is_leader() {
                    tracing::warn!(error = %err, "leadership session lost");
                }
                false
            }
        };
        relay.set_leader(leads);
    }
}

/// Runs `task` while `relay` leads: started when it becomes leader,
/// stopped when it stops being one, started again when it leads again.
pub async fn while_leading<F, Fut>(relay: Arc<Relay>, task: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut leader = relay.leadership();
    loop {
        if leader.wait_for(|leads| *leads).await.is_err() {
            return;
        }
        tokio::select! {
            () = task() => return,
            stopped = leader.wait_for(|leads| !*leads) => {
                if stopped.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> StoredEvent {
        StoredEvent::new(seq, Arc::from(format!(r#"{{"seq":{seq}}}"#)))
    }

    fn drain(rx: &mut broadcast::Receiver<StoredEvent>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(e.seq);
        }
        out
    }

    #[test]
    fn own_commits_that_continue_the_feed_are_published_at_once() {
        let (live, mut rx) = broadcast::channel(16);
        let feed = Feed::new(live);
        *feed.last.lock().unwrap() = Some(4);
        let mine = [event(5), event(6)];
        feed.committed(&mine);
        assert_eq!(drain(&mut rx), vec![5, 6]);
        assert_eq!(feed.last(), Some(6));
    }

    #[test]
    fn a_gap_before_own_commits_waits_for_the_database_read() {
        let (live, mut rx) = broadcast::channel(16);
        let feed = Feed::new(live);
        *feed.last.lock().unwrap() = Some(4);
        // Another relay committed 5 and 6; ours are 7 and 8.
        let mine = [event(7), event(8)];
        feed.committed(&mine);
        assert_eq!(drain(&mut rx), Vec::<i64>::new(), "nothing out of order");
        // The tailer's read brings 5..=8 in order; our 7 and 8 are not
        // published twice.
        let page: Vec<_> = (5..=8).map(event).collect();
        assert_eq!(feed.read(&page), 4);
        assert_eq!(drain(&mut rx), vec![5, 6, 7, 8]);
        feed.committed(&mine);
        assert_eq!(feed.read(&page), 0);
        assert_eq!(drain(&mut rx), Vec::<i64>::new());
    }

    #[test]
    fn nothing_is_published_before_the_tailer_knows_where_the_database_stands() {
        let (live, mut rx) = broadcast::channel(16);
        let feed = Feed::new(live);
        feed.committed(&[event(1)]);
        assert_eq!(drain(&mut rx), Vec::<i64>::new());
    }
}
