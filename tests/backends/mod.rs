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

/// A PostgreSQL cluster of one test's own (initdb in a temp directory,
/// unix socket only), for a test that stops and starts the server: the
/// shared `CRISISDESK_TEST_PG` one must keep running for the others. As
/// root the server runs as `postgres`, as `.ci/postgres-cluster` does.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    as_root: bool,
}

impl PrivateCluster {
    /// Only where the throwaway cluster's binaries are (the machine that
    /// runs the PostgreSQL tests); None elsewhere.
    pub fn start() -> Option<PrivateCluster> {
        let bin = std::path::PathBuf::from(
            std::env::var("CRISISDESK_TEST_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        if !bin.join("initdb").exists() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("cdk-pgx.")
            .tempdir_in("/tmp")
            .unwrap();
        let as_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let cluster = PrivateCluster { dir, bin, as_root };
        if as_root {
            let ok = std::process::Command::new("chown")
                .arg("postgres")
                .arg(cluster.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the private cluster's directory to postgres");
        }
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                &cluster.user(),
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    fn user(&self) -> String {
        if self.as_root {
            "postgres".into()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let path = self.bin.join(tool);
        let mut cmd = if self.as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) on the same data and socket.
    pub fn start_server(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!(
            "-c listen_addresses='' -k {} -c max_connections=100",
            self.dir.path().display()
        );
        self.pg(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &opts, "start",
            ],
        );
    }

    /// Stops the server: `fast` ends every session and checkpoints,
    /// `immediate` is a crash (recovery from the WAL on the next start).
    pub fn stop_server(&self, mode: &str) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
    }

    /// The URL of the cluster's `postgres` database.
    pub fn server_url(&self) -> String {
        format!(
            "postgres://{}@localhost/postgres?host={}",
            self.user(),
            self.dir.path().display()
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let mut cmd = if self.as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
