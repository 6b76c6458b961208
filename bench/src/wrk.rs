//! Drives wrk with `bench/call.lua` and reads the JSON line its `done` hook prints.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cpu;

/// wrk shares the two cores with the server: one thread is enough to saturate it and leaves the server
/// the most CPU (two threads measured lower throughput for every server).
pub const THREADS: u32 = 1;

/// What one wrk run measured. Latencies are in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrkResult {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub bytes: u64,
    /// Replies with a status of 400 or more (wrk's own count).
    pub non_2xx: u64,
    /// Replies with a lower status that do not hold the sum (counted by `bench/call.lua`).
    pub wrong_replies: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub timeouts: u64,
}

impl WrkResult {
    /// Every request that did not come back as a right answer: error statuses, replies without the
    /// sum, and socket failures.
    pub fn failures(&self) -> u64 {
        self.non_2xx
            + self.wrong_replies
            + self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.timeouts
    }
}

pub struct Load<'a> {
    pub script: &'a Path,
    pub url: &'a str,
    pub connections: u32,
    pub duration: Duration,
    pub token: Option<&'a str>,
    /// The `Mcp-Session-Id` every request carries; `None` in stateless mode.
    pub session: Option<&'a str>,
}

/// Runs wrk; returns what it measured and the CPU it used itself, in clock ticks.
pub async fn run(load: &Load<'_>) -> Result<(WrkResult, u64), String> {
    let threads = THREADS.min(load.connections);
    let child = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "10s", "-s"])
        .arg(load.script)
        .arg(load.url)
        .env("BENCH_TOKEN", load.token.unwrap_or(""))
        .env("BENCH_SESSION", load.session.unwrap_or(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run wrk ({e}); bench/run installs it"))?;
    // Read until it exits: once reaped, its CPU time cannot be read any more.
    let ticks = Arc::new(AtomicU64::new(0));
    let watcher = child.id().map(|pid| {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            while let Some(now) = cpu::process_ticks(pid) {
                ticks.store(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("wrk did not finish: {e}"))?;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok((parse(&stdout)?, ticks.load(Ordering::Relaxed)))
}

fn parse(stdout: &str) -> Result<WrkResult, String> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        .ok_or_else(|| format!("wrk printed no BENCH_RESULT line:\n{stdout}"))?;
    serde_json::from_str(line)
        .map_err(|e| format!("wrk's BENCH_RESULT line does not parse: {e}: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_done_hook_line_is_found_among_wrk_output() {
        let stdout = "Running 5s test @ http://127.0.0.1:1/mcp\n  1 threads and 8 connections\n\
            BENCH_RESULT {\"requests\":151173,\"seconds\":5.000456,\"rps\":30231.843,\"p50_us\":233,\"p90_us\":380,\"p99_us\":564,\"max_us\":4446,\"mean_us\":256.816,\"bytes\":30083427,\"non_2xx\":2,\"wrong_replies\":4,\"connect_errors\":0,\"read_errors\":1,\"write_errors\":0,\"timeouts\":3}\n\
            Requests/sec:  30231.84\n";
        let result = parse(stdout).unwrap();
        assert_eq!(result.requests, 151173);
        assert_eq!(result.p99_us, 564);
        assert_eq!(result.failures(), 10);
    }

    #[test]
    fn output_without_the_line_is_an_error_that_shows_it() {
        let error = parse("unable to connect to 127.0.0.1:1 Connection refused\n").unwrap_err();
        assert!(error.contains("Connection refused"), "{error}");
    }
}
