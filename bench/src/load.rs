//! The default run. Every server is started, checked and warmed first; then, for each connection
//! count and each round, every server in turn is driven by wrk while its memory is sampled. Taking
//! turns within a round means a slow minute of the shared machine lands on every server alike
//! instead of on whichever happened to run then, which matters most for the ratios.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use toolgate_dev_idp::DevIdp;

use crate::cpu;
use crate::machine::Machine;
use crate::memory::{self, Sampler};
use crate::proxy::{self, Redis};
use crate::subjects::{self, Mode, Paths, Running, SUBJECTS, Server, Subject};
use crate::wrk::{self, WrkResult};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub connections: Vec<u32>,
    pub duration: Duration,
    pub warm_up: Duration,
    /// Measurements of every server at every connection count; a row shows their median.
    pub rounds: u32,
    /// Subject keys to run; empty runs them all.
    pub only: Vec<String>,
    /// Other work may use at most this much CPU (percent of one core) during a measurement; above
    /// it the measurement waits for quiet beforehand and is taken again (up to `ATTEMPTS` times).
    pub quiet_limit: f64,
    /// How long a measurement waits for a quiet machine before it runs anyway.
    pub patience: Duration,
}

/// Tries per measurement; the least disturbed one is kept.
pub const ATTEMPTS: u32 = 3;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            connections: vec![1, 8, 32, 64],
            duration: Duration::from_secs(10),
            warm_up: Duration::from_secs(2),
            rounds: 1,
            only: Vec::new(),
            quiet_limit: 10.0,
            patience: Duration::from_secs(120),
        }
    }
}

/// One wrk run of one server.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    #[serde(flatten)]
    pub wrk: WrkResult,
    /// The largest VmRSS seen while this load ran.
    pub rss_peak_kib: u64,
    /// CPU other work used meanwhile, in percent of one core.
    pub others_cpu_percent: f64,
    /// How many times it was measured; the least disturbed try is the one kept.
    pub attempts: u32,
}

/// One server at one connection count, over every round.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub connections: u32,
    /// Medians over the rounds.
    pub rps: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub rps_min: f64,
    pub rps_max: f64,
    /// Failed requests in all rounds together.
    pub failures: u64,
    pub rss_peak_kib: u64,
    /// The most any round was disturbed.
    pub others_cpu_percent: f64,
    pub samples: Vec<Sample>,
}

impl Point {
    fn from_samples(connections: u32, samples: Vec<Sample>) -> Point {
        let rps: Vec<f64> = samples.iter().map(|s| s.wrk.rps).collect();
        let p50: Vec<f64> = samples.iter().map(|s| s.wrk.p50_us as f64).collect();
        let p99: Vec<f64> = samples.iter().map(|s| s.wrk.p99_us as f64).collect();
        Point {
            connections,
            rps: median(&rps),
            p50_us: median(&p50).round() as u64,
            p99_us: median(&p99).round() as u64,
            rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps_max: rps.iter().copied().fold(0.0, f64::max),
            failures: samples.iter().map(|s| s.wrk.failures()).sum(),
            rss_peak_kib: samples.iter().map(|s| s.rss_peak_kib).max().unwrap_or(0),
            others_cpu_percent: samples
                .iter()
                .map(|s| s.others_cpu_percent)
                .fold(0.0, f64::max),
            samples,
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectResult {
    pub key: String,
    pub label: String,
    pub mode: Mode,
    pub points: Vec<Point>,
    pub rss_idle_kib: u64,
    pub rss_peak_kib: u64,
    pub hwm_kib: u64,
    /// JWKS requests the identity provider served while this server started or was under load
    /// (an idle server fetches nothing: each caches its keys).
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
    pub rounds: u32,
    pub connections: Vec<u32>,
    pub quiet_limit_percent: f64,
    pub subjects: Vec<SubjectResult>,
    /// JWKS requests in the whole run, every server included.
    pub jwks_fetches_total: usize,
}

/// A started server and what is gathered about it.
struct Contender {
    subject: &'static Subject,
    token: String,
    server: Running,
    samples: Vec<Vec<Sample>>,
    rss_idle_kib: u64,
    jwks_fetches: usize,
    discovery_fetches: usize,
}

/// What the identity provider served while `f` ran: JWKS and discovery requests.
async fn attributed<T>(idp: &DevIdp, f: impl Future<Output = T>) -> (T, usize, usize) {
    let (jwks, discovery) = (idp.jwks_requests(), idp.discovery_requests());
    let out = f.await;
    (
        out,
        idp.jwks_requests() - jwks,
        idp.discovery_requests() - discovery,
    )
}

pub async fn run(paths: &Paths, options: &LoadOptions) -> Result<LoadRun, String> {
    let machine = Machine::read(&paths.python).await;
    let idp = DevIdp::start(
        subjects::idp_config(),
        "127.0.0.1:0".parse().expect("valid"),
    )
    .await
    .map_err(|e| format!("the dev identity provider did not start: {e}"))?;
    let http = reqwest::Client::new();
    let direct_token = subjects::fetch_direct_token(&http, &idp).await?;
    let selected: Vec<&'static Subject> = SUBJECTS
        .iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|k| k == s.key))
        .collect();
    let redis = match selected.iter().any(|s| s.server == Server::ToolgateProxy) {
        true => Some(
            proxy::start_redis(subjects::free_port()?, &paths.results.join("redis.log")).await?,
        ),
        false => None,
    };

    let mut contenders = Vec::new();
    for subject in selected {
        let (started, jwks, discovery) = attributed(
            &idp,
            start(
                subject,
                &direct_token,
                paths,
                &idp,
                redis.as_ref(),
                &http,
                options,
            ),
        )
        .await;
        let (server, token, rss_idle_kib) = started?;
        contenders.push(Contender {
            subject,
            token,
            server,
            samples: vec![Vec::new(); options.connections.len()],
            rss_idle_kib,
            jwks_fetches: jwks,
            discovery_fetches: discovery,
        });
    }

    let ours: Vec<u32> = contenders
        .iter()
        .map(|c| c.server.pid)
        .chain([std::process::id()])
        .collect();
    for (index, &connections) in options.connections.iter().enumerate() {
        for round in 1..=options.rounds {
            eprintln!(
                "-- {connections} connections, round {round} of {}",
                options.rounds
            );
            for contender in &mut contenders {
                let (sample, jwks, discovery) = attributed(
                    &idp,
                    measure(contender, connections, &ours, paths, &http, options),
                )
                .await;
                contender.jwks_fetches += jwks;
                contender.discovery_fetches += discovery;
                let sample = sample?;
                contender.samples[index].push(sample);
            }
        }
    }

    let mut results = Vec::new();
    for contender in contenders {
        // Still right after the load, so a server that broke under it cannot look fast.
        subjects::check(
            &http,
            contender.subject,
            &contender.server.mcp_url,
            &contender.token,
        )
        .await?;
        let hwm_kib = memory::read(contender.server.pid).map_or(0, |m| m.hwm_kib);
        contender.server.stop().await;
        let points: Vec<Point> = options
            .connections
            .iter()
            .zip(contender.samples)
            .map(|(&c, samples)| Point::from_samples(c, samples))
            .collect();
        results.push(SubjectResult {
            key: contender.subject.key.into(),
            label: contender.subject.label.into(),
            mode: contender.subject.mode,
            rss_idle_kib: contender.rss_idle_kib,
            rss_peak_kib: points.iter().map(|p| p.rss_peak_kib).max().unwrap_or(0),
            hwm_kib,
            points,
            jwks_fetches: contender.jwks_fetches,
            discovery_fetches: contender.discovery_fetches,
        });
    }
    let jwks_fetches_total = idp.jwks_requests();
    idp.shutdown().await;
    Ok(LoadRun {
        machine,
        protocol_version: subjects::PROTOCOL_VERSION,
        wrk_threads: wrk::THREADS,
        duration_s: options.duration.as_secs(),
        warm_up_s: options.warm_up.as_secs(),
        rounds: options.rounds,
        connections: options.connections.clone(),
        quiet_limit_percent: options.quiet_limit,
        subjects: results,
        jwks_fetches_total,
    })
}

/// Starts a server, gets its token, checks its answer, reads its idle memory, and warms it up.
async fn start(
    subject: &Subject,
    direct_token: &str,
    paths: &Paths,
    idp: &DevIdp,
    redis: Option<&Redis>,
    http: &reqwest::Client,
    options: &LoadOptions,
) -> Result<(Running, String, u64), String> {
    eprintln!("-- {}: starting", subject.label);
    let server = subjects::launch(subject, paths, idp, redis).await?;
    let token = subjects::token_for(subject.token, direct_token, &server).await?;
    let token = token.as_str();
    subjects::check(http, subject, &server.mcp_url, token).await?;
    let rss_idle_kib = memory::read(server.pid).map_or(0, |m| m.rss_kib);
    // Lets caches fill and lazy initialisation happen before anything is recorded.
    let session = open_for_load(http, subject, &server.mcp_url, token).await?;
    let (warm_up, _) = wrk::run(&wrk::Load {
        script: &paths.wrk_script,
        url: &server.mcp_url,
        connections: 8,
        duration: options.warm_up,
        token: Some(token),
        session: session.as_deref(),
    })
    .await?;
    after_load(http, subject, &server.mcp_url, token, session.as_deref()).await?;
    if warm_up.failures() > 0 {
        return Err(format!(
            "{}: {} of {} warm-up requests failed; see {}",
            subject.label,
            warm_up.failures(),
            warm_up.requests,
            server.log.display()
        ));
    }
    Ok((server, token.to_owned(), rss_idle_kib))
}

/// In session mode, the session a load runs in: opened first, as a client opens it. Every load has
/// its own, so no measurement inherits another's state.
async fn open_for_load(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
) -> Result<Option<String>, String> {
    match subject.mode {
        Mode::Stateless => Ok(None),
        Mode::Session => subjects::open_session(http, subject, url, token)
            .await
            .map(Some),
    }
}

/// After a load in a session: a call in that session still answers the sum (a server whose
/// session broke under the load cannot look fast), then the session is ended.
async fn after_load(
    http: &reqwest::Client,
    subject: &Subject,
    url: &str,
    token: &str,
    session: Option<&str>,
) -> Result<(), String> {
    let Some(session) = session else {
        return Ok(());
    };
    // wrk's ids are numbers counting from 1; this one cannot be among them.
    subjects::check_call(
        http,
        subject,
        url,
        token,
        Some(session),
        &json!("after-load"),
    )
    .await?;
    subjects::close_session(http, subject, url, token, session).await
}

/// One measurement, taken again when other work disturbed it; the least disturbed try is kept.
async fn measure(
    contender: &Contender,
    connections: u32,
    ours: &[u32],
    paths: &Paths,
    http: &reqwest::Client,
    options: &LoadOptions,
) -> Result<Sample, String> {
    let subject = contender.subject;
    let server = &contender.server;
    let url = server.mcp_url.as_str();
    let token = contender.token.as_str();
    let mut best: Option<Sample> = None;
    let mut tries = 0;
    while tries < ATTEMPTS {
        tries += 1;
        let others_before = cpu::wait_for_quiet(ours, options.quiet_limit, options.patience).await;
        if others_before > options.quiet_limit {
            eprintln!(
                "   (other work still uses {others_before:.0}% of a core after {} s; measuring anyway)",
                options.patience.as_secs()
            );
        }
        let session = open_for_load(http, subject, url, token).await?;
        let watch = cpu::Watch::start(ours);
        let sampler = Sampler::start(server.pid, Duration::from_millis(100));
        let result = wrk::run(&wrk::Load {
            script: &paths.wrk_script,
            url,
            connections,
            duration: options.duration,
            token: Some(token),
            session: session.as_deref(),
        })
        .await;
        let rss_peak_kib = sampler.finish().await;
        let (result, wrk_ticks) = result?;
        let others_cpu_percent = watch.others_percent(wrk_ticks);
        after_load(http, subject, url, token, session.as_deref()).await?;
        eprintln!(
            "   {:<38} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  failures {}  RSS {:5.1} MiB  others {:.0}% of a core",
            subject.label,
            result.rps,
            result.p50_us as f64 / 1000.0,
            result.p99_us as f64 / 1000.0,
            result.failures(),
            memory::mib(rss_peak_kib),
            others_cpu_percent,
        );
        let quiet = others_cpu_percent <= options.quiet_limit;
        let sample = Sample {
            wrk: result,
            rss_peak_kib,
            others_cpu_percent,
            attempts: 0,
        };
        if best
            .as_ref()
            .is_none_or(|b| sample.others_cpu_percent < b.others_cpu_percent)
        {
            best = Some(sample);
        }
        if quiet {
            break;
        }
    }
    let mut best = best.expect("at least one attempt");
    best.attempts = tries;
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
