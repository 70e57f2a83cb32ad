//! What several relays on one PostgreSQL database share besides the
//! tables (issue 15, phase 2): a wake-up when another relay committed
//! events (LISTEN/NOTIFY), and leadership for the once-per-cluster tasks
//! (a session advisory lock held on a connection of its own).
//!
//! Neither carries data. A notification only says "look again": the relay
//! re-reads the stream by `seq` after every one, after every reconnect of
//! its listener, and on a timer, so a lost notification (a listener cut
//! off) costs latency, never an event. The notification is sent by the
//! database itself, from a trigger on `log_heads` (migration 0003), so it
//! goes out when and only when a transaction that appended events commits,
//! whichever process wrote them. The lock only decides who runs the
//! escalation scan and the checkpoints; those write under the `log_heads` lock like every
//! other writer, so two relays that briefly both believe they lead (a
//! handover) write each escalation once all the same.
//!
//! Both need a session that lives as long as the relay: they cannot go
//! through a transaction pooler (PgBouncer in transaction mode), which
//! docs/operations.md says.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};

use super::PgStore;
use crate::store::StoreError;

/// The channel every commit that appends events is announced on (by the
/// trigger of migrations/postgres/0003); the payload is the new head `seq`.
const EVENTS_CHANNEL: &str = "crisisdesk_events";

/// The advisory lock of leadership ("cdklead" in ASCII). Advisory locks
/// belong to one database, so the relays of two databases on one server
/// never contend for it.
const LEADER_KEY: i64 = 0x0063_646b_6c65_6164;

/// A leader's check of its session (or a follower's try) that takes longer
/// than this counts as a lost session: a partitioned leader stops leading
/// instead of hanging on a socket.
const LEADER_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The server drops the session of a leader whose machine vanished
/// (no FIN, no RST) after about idle + interval x count seconds, which
/// frees the lock for another relay. Only over TCP; a unix socket always
/// tells.
const KEEPALIVE: [(&str, &str); 3] = [
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
];

/// What woke the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A relay committed events up to this `seq`.
    Announced(i64),
    /// The listener (re)connected: notifications sent while it was away
    /// are lost, so read by `seq` now.
    Listening,
}

/// Listens for commits announced by any relay of the database, on a
/// connection of its own (not one of the store's pool).
pub struct EventListener {
    options: PgConnectOptions,
    listener: Option<PgListener>,
}

impl EventListener {
    /// The next wake-up. An error means the listener lost its server and
    /// could not get it back; the next call tries again (the caller waits
    /// between calls and keeps reading by `seq` on its timer meanwhile).
    pub async fn next(&mut self) -> Result<Wake, StoreError> {
        let Some(listener) = self.listener.as_mut() else {
            // A pool of one, only so sqlx can reconnect it by itself.
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .max_lifetime(None)
                .idle_timeout(None)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(self.options.clone());
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            self.listener = Some(listener);
            return Ok(Wake::Listening);
        };
        match listener.try_recv().await {
            // A payload that is not a number still means "look again".
            Ok(Some(n)) => Ok(Wake::Announced(n.payload().parse().unwrap_or(i64::MAX))),
            // Lost and already reconnected (and listening again) by sqlx.
            Ok(None) => Ok(Wake::Listening),
            Err(err) => {
                self.listener = None;
                Err(err.into())
            }
        }
    }
}

/// Leadership of the cluster through a session advisory lock.
pub struct LeaderLock {
    options: PgConnectOptions,
    session: Option<PgConnection>,
    held: bool,
}

impl LeaderLock {
    /// Whether this relay leads now. Call it every second or so: a leader
    /// checks its session is alive (the lock lives and dies with it), a
    /// follower tries to take the lock. Any failure drops the session, and
    /// with it leadership; the next call starts over.
    pub async fn check(&mut self) -> Result<bool, StoreError> {
        match tokio::time::timeout(LEADER_CHECK_TIMEOUT, self.try_check()).await {
            Ok(Ok(leads)) => Ok(leads),
            Ok(Err(err)) => {
                self.release();
                Err(err)
            }
            Err(_) => {
                self.release();
                Err(StoreError::Unavailable(
                    "the leadership session did not answer in time".into(),
                ))
            }
        }
    }

    async fn try_check(&mut self) -> Result<bool, StoreError> {
        if self.session.is_none() {
            self.held = false;
            self.session = Some(PgConnection::connect_with(&self.options).await?);
        }
        let Some(session) = self.session.as_mut() else {
            return Ok(false);
        };
        if self.held {
            session.ping().await?;
            return Ok(true);
        }
        // Not `pg_advisory_lock`: a follower must not hold a connection in
        // a wait it cannot time out; it asks again next second.
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_KEY)
            .fetch_one(&mut *session)
            .await?;
        self.held = got;
        Ok(got)
    }

    /// Gives leadership up: closing the session frees the lock at once.
    pub fn release(&mut self) {
        self.held = false;
        // Dropped, not closed politely: the socket's end is what the
        // server needs, and it must not wait on a server that hangs.
        self.session = None;
    }
}

impl PgStore {
    /// A listener for the commits of every relay on this database.
    pub fn event_listener(&self) -> EventListener {
        EventListener {
            options: (*self.pool.connect_options()).clone(),
            listener: None,
        }
    }

    /// The cluster's leadership lock, not taken yet.
    pub fn leader_lock(&self) -> LeaderLock {
        LeaderLock {
            options: (*self.pool.connect_options()).clone().options(KEEPALIVE),
            session: None,
            held: false,
        }
    }
}
