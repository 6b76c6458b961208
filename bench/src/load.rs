//! The default run: every server in turn, checked, warmed, then driven by wrk at each connection
//! count while its memory is sampled.

use std::time::Duration;

use serde::Serialize;
use toolgate_dev_idp::{DevIdp, DevIdpConfig};

use crate::cpu;
use crate::machine::Machine;
use crate::memory::{self, Sampler};
use crate::subjects::{self, Identity, Paths, SUBJECTS, Subject};
use crate::wrk::{self, WrkResult};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub connections: Vec<u32>,
    pub duration: Duration,
    pub warm_up: Duration,
    /// Subject keys to run; empty runs them all.
    pub only: Vec<String>,
    /// Other work may use at most this much CPU (percent of one core) during a row; above it the
    /// row waits for quiet beforehand and is measured again (up to `ATTEMPTS` times).
    pub quiet_limit: f64,
    /// How long a row waits for a quiet machine before it runs anyway.
    pub patience: Duration,
}

/// Tries per row; the least disturbed one is kept.
pub const ATTEMPTS: u32 = 3;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            connections: vec![1, 8, 32, 64],
            duration: Duration::from_secs(10),
            warm_up: Duration::from_secs(2),
            only: Vec::new(),
            quiet_limit: 10.0,
            patience: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub connections: u32,
    #[serde(flatten)]
    pub wrk: WrkResult,
    /// The largest VmRSS seen while this load ran.
    pub rss_peak_kib: u64,
    /// CPU other work used while this row ran, in percent of one core.
    pub others_cpu_percent: f64,
    /// How many times the row was measured; this is the least disturbed one.
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectResult {
    pub key: String,
    pub label: String,
    /// Why there are no numbers, for a row that could not be measured yet.
    pub not_measured: Option<String>,
    pub points: Vec<Point>,
    pub rss_idle_kib: u64,
    pub rss_peak_kib: u64,
    pub hwm_kib: u64,
    /// JWKS requests the identity provider served while this server ran.
    pub jwks_fetches: usize,
    pub discovery_fetches: usize,
}

impl SubjectResult {
    pub fn at(&self, connections: u32) -> Option<&Point> {
        self.points.iter().find(|p| p.connections == connections)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    pub machine: Machine,
    pub protocol_version: &'static str,
    pub wrk_threads: u32,
    pub duration_s: u64,
    pub warm_up_s: u64,
    pub connections: Vec<u32>,
    pub quiet_limit_percent: f64,
    pub subjects: Vec<SubjectResult>,
    /// JWKS requests in the whole run, every server included.
    pub jwks_fetches_total: usize,
}

pub async fn run(paths: &Paths, options: &LoadOptions) -> Result<LoadRun, String> {
    let machine = Machine::read(&paths.python).await;
    let idp = DevIdp::start(
        DevIdpConfig::default(),
        "127.0.0.1:0".parse().expect("valid"),
    )
    .await
    .map_err(|e| format!("the dev identity provider did not start: {e}"))?;
    let http = reqwest::Client::new();
    let direct_token = subjects::fetch_direct_token(&http, &idp).await?;
    let identity = Identity {
        direct_token: &direct_token,
    };
    let mut results = Vec::new();
    for subject in SUBJECTS {
        if !options.only.is_empty() && !options.only.iter().any(|k| k == subject.key) {
            continue;
        }
        let result = match identity.token_for(subject.token) {
            Ok(token) => measure(subject, &token, paths, &idp, &http, options).await?,
            Err(reason) => {
                eprintln!("-- {}: not measured: {}", subject.label, reason.0);
                SubjectResult {
                    key: subject.key.into(),
                    label: subject.label.into(),
                    not_measured: Some(reason.0.into()),
                    points: Vec::new(),
                    rss_idle_kib: 0,
                    rss_peak_kib: 0,
                    hwm_kib: 0,
                    jwks_fetches: 0,
                    discovery_fetches: 0,
                }
            }
        };
        results.push(result);
    }
    let jwks_fetches_total = idp.jwks_requests();
    idp.shutdown().await;
    Ok(LoadRun {
        machine,
        protocol_version: "2025-11-25",
        wrk_threads: wrk::THREADS,
        duration_s: options.duration.as_secs(),
        warm_up_s: options.warm_up.as_secs(),
        connections: options.connections.clone(),
        quiet_limit_percent: options.quiet_limit,
        subjects: results,
        jwks_fetches_total,
    })
}

async fn measure(
    subject: &Subject,
    token: &str,
    paths: &Paths,
    idp: &DevIdp,
    http: &reqwest::Client,
    options: &LoadOptions,
) -> Result<SubjectResult, String> {
    let jwks_before = idp.jwks_requests();
    let discovery_before = idp.discovery_requests();
    eprintln!("-- {}: starting", subject.label);
    let server = subjects::launch(subject, paths, idp).await?;
    subjects::check(http, subject, &server.mcp_url, token).await?;
    let rss_idle_kib = memory::read(server.pid).map_or(0, |m| m.rss_kib);

    let load = |connections, duration| wrk::Load {
        script: &paths.wrk_script,
        url: &server.mcp_url,
        connections,
        duration,
        token: Some(token),
    };
    // Lets caches fill and lazy initialisation happen before anything is recorded.
    let (warm_up, _) = wrk::run(&load(8, options.warm_up)).await?;
    if warm_up.failures() > 0 {
        return Err(format!(
            "{}: {} of {} warm-up requests failed; see {}",
            subject.label,
            warm_up.failures(),
            warm_up.requests,
            server.log.display()
        ));
    }

    let ours = [server.pid, std::process::id()];
    let mut points = Vec::new();
    for &connections in &options.connections {
        let mut best: Option<Point> = None;
        let mut tries = 0;
        for _ in 0..ATTEMPTS {
            tries += 1;
            let others_before =
                cpu::wait_for_quiet(&ours, options.quiet_limit, options.patience).await;
            if others_before > options.quiet_limit {
                eprintln!(
                    "   (other work still uses {others_before:.0}% of a core after {} s; measuring anyway)",
                    options.patience.as_secs()
                );
            }
            let watch = cpu::Watch::start(&ours);
            let sampler = Sampler::start(server.pid, Duration::from_millis(100));
            let result = wrk::run(&load(connections, options.duration)).await;
            let rss_peak_kib = sampler.finish().await;
            let (result, wrk_ticks) = result?;
            let others_cpu_percent = watch.others_percent(wrk_ticks);
            eprintln!(
                "   {:>3} connections: {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failures {}  RSS {:.1} MiB  others {:.0}% of a core",
                connections,
                result.rps,
                result.p50_us as f64 / 1000.0,
                result.p99_us as f64 / 1000.0,
                result.failures(),
                memory::mib(rss_peak_kib),
                others_cpu_percent,
            );
            let point = Point {
                connections,
                wrk: result,
                rss_peak_kib,
                others_cpu_percent,
                attempts: 0,
            };
            if best
                .as_ref()
                .is_none_or(|b| point.others_cpu_percent < b.others_cpu_percent)
            {
                best = Some(point);
            }
            if others_cpu_percent <= options.quiet_limit {
                break;
            }
        }
        let mut best = best.expect("at least one attempt");
        best.attempts = tries;
        points.push(best);
    }
    // Still right after the load, so a server that broke under it cannot look fast.
    subjects::check(http, subject, &server.mcp_url, token).await?;
    let hwm_kib = memory::read(server.pid).map_or(0, |m| m.hwm_kib);
    server.stop().await;
    Ok(SubjectResult {
        key: subject.key.into(),
        label: subject.label.into(),
        not_measured: None,
        rss_idle_kib,
        rss_peak_kib: points.iter().map(|p| p.rss_peak_kib).max().unwrap_or(0),
        hwm_kib,
        points,
        jwks_fetches: idp.jwks_requests() - jwks_before,
        discovery_fetches: idp.discovery_requests() - discovery_before,
    })
}
