//! Logging set-up. The console owns the terminal, so its logs go to a file;
//! the relay logs to stderr. Level from `CRISISDESK_LOG` (default `info`).
//!
//! Privacy rule for every log line in this crate: case ids, seqs, roles and
//! credential names only, never a student's name or any alert free text.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("CRISISDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Where the console writes its log: the per-user data directory, e.g.
/// `~/.local/share/crisisdesk/`.
pub fn default_dir() -> anyhow::Result<std::path::PathBuf> {
    dirs::data_local_dir()
        .map(|d| d.join("crisisdesk"))
        .ok_or_else(|| anyhow::anyhow!("no per-user data directory (is HOME set?)"))
}

/// Logs to stderr (services).
pub fn to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Logs to `path` through a background writer; keep the guard alive until
/// exit so buffered lines are flushed.
pub fn to_file(path: &Path) -> anyhow::Result<WorkerGuard> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create log directory {}: {e}", dir.display()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("log path {} has no file name", path.display()))?;
    let appender = tracing_appender::rolling::never(dir, file_name);
    // The default queue holds 128,000 lines, allocated up front: 4 MB of a
    // console's memory for a log that writes a few lines an hour. A
    // thousand is ample; past it lines are dropped (lossy, the default),
    // never the UI thread blocked.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(1024)
        .finish(appender);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Ok(guard)
}

/// A JSON parse error fit for a log: its kind and position only. serde's
/// own message can quote the offending value (`invalid type: string "…"`),
/// which for alert, event or command content may be a student's name or
/// free text.
pub fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_errors_in_logs_never_quote_the_input() {
        let e = serde_json::from_str::<u8>(r#""王小明 今晚就结束吧""#).unwrap_err();
        assert!(e.to_string().contains("王小明"), "serde would quote it");
        let logged = super::json_error(&e);
        assert!(
            !logged.contains("王小明") && !logged.contains("结束"),
            "{logged}"
        );
        assert!(logged.contains("line 1"), "{logged}");
    }
}
