//! Store tests run on every backend from one set of tests: SQLite always
//! (a fresh file), PostgreSQL when `CRISISDESK_TEST_PG` names a server
//! (`postgres://USER@HOST:PORT/DB`; `.ci/run` starts a throwaway one),
//! each test in a fresh database of its own made there.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use crisisdesk::store::Store;
use sqlx::Connection;

/// One database for one test, with the URL that opens it again (a second
/// `Store::open` of it is a second process's or relay's pool).
pub struct TestDb {
    pub label: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{}: open {}: {e}", self.label, self.url))
    }
}

/// The PostgreSQL server to test against, if any. In CI (`CI` set, as
/// `.ci/run` does) it must be given: the second backend is never skipped
/// there without a word.
pub fn pg_server() -> Option<String> {
    let server = std::env::var("CRISISDESK_TEST_PG")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if server.is_none() && std::env::var_os("CI").is_some() {
        panic!(
            "CI is set but CRISISDESK_TEST_PG is not: .ci/run starts a PostgreSQL for the tests"
        );
    }
    server
}

/// A fresh SQLite file, and a fresh PostgreSQL database when a server is
/// given.
pub async fn databases() -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db()];
    if let Some(server) = pg_server() {
        dbs.push(pg_db(&server).await);
    }
    dbs
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    TestDb {
        label: "sqlite",
        url: format!("sqlite:{}", dir.path().join("store.db").display()),
        _dir: Some(dir),
    }
}

/// `server` with its database replaced by `name`.
pub fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

/// A new, empty database on `server`, named after this process and a
/// counter so parallel tests never share one.
pub async fn pg_db(server: &str) -> TestDb {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "cdk_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("CRISISDESK_TEST_PG={server}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    TestDb {
        label: "postgres",
        url: with_database(server, &name),
        _dir: None,
    }
}
