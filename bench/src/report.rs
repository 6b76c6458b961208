//! The table, the ratios and the targets of a load run. Targets are judged and printed, never
//! enforced: a missed target is a finding, not a failure of the run.

use serde::Serialize;

use crate::load::{LoadRun, SubjectResult};
use crate::memory::mib;
use crate::subjects::{
    BARE_AXUM, FASTMCP, FASTMCP_SESSION, TOOLGATE, TOOLGATE_NO_AUTH, TOOLGATE_PROXY,
    TOOLGATE_PROXY_SESSION, TOOLGATE_SESSION,
};

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub connections: u32,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    AtLeast,
    AtMost,
    /// Strictly less than the limit ("under 1 ms").
    Below,
}

impl Want {
    fn symbol(self) -> &'static str {
        match self {
            Want::AtLeast => ">=",
            Want::AtMost => "<=",
            Want::Below => "<",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub want: Want,
    pub limit: f64,
    pub unit: &'static str,
    /// `None`: not measured in this run (the reason is in `note`).
    pub measured: Option<f64>,
    pub note: Option<String>,
}

impl Target {
    pub fn met(&self) -> Option<bool> {
        let value = self.measured?;
        Some(match self.want {
            Want::AtLeast => value >= self.limit,
            Want::AtMost => value <= self.limit,
            Want::Below => value < self.limit,
        })
    }

    /// How far a missed target is from its limit, as a fraction of the limit.
    pub fn shortfall(&self) -> Option<f64> {
        let value = self.measured?;
        let off = match self.want {
            Want::AtLeast => (self.limit - value) / self.limit,
            Want::AtMost | Want::Below => (value - self.limit) / self.limit,
        };
        (off > 0.0).then_some(off)
    }

    pub fn verdict(&self) -> String {
        match (self.met(), self.shortfall()) {
            (None, _) => format!(
                "not measured{}",
                self.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ),
            (Some(true), _) => "met".into(),
            (Some(false), Some(off)) => format!("MISSED by {:.1}%", off * 100.0),
            (Some(false), None) => "MISSED".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    pub ratios: Vec<Ratio>,
    pub targets: Vec<Target>,
}

fn subject<'a>(run: &'a LoadRun, key: &str) -> Option<&'a SubjectResult> {
    run.subjects.iter().find(|s| s.key == key)
}

fn rps_ratio(run: &LoadRun, top: &str, bottom: &str, connections: u32) -> Option<f64> {
    let top = subject(run, top)?.at(connections)?.rps;
    let bottom = subject(run, bottom)?.at(connections)?.rps;
    (bottom > 0.0).then(|| top / bottom)
}

pub fn judge(run: &LoadRun) -> Judgement {
    let mut ratios = Vec::new();
    for &c in &run.connections {
        for (name, top, bottom) in [
            ("toolgate / FastMCP", TOOLGATE, FASTMCP),
            ("toolgate auth on / auth off", TOOLGATE, TOOLGATE_NO_AUTH),
            ("toolgate auth on / bare axum", TOOLGATE, BARE_AXUM),
            (
                "toolgate proxy token / direct token",
                TOOLGATE_PROXY,
                TOOLGATE,
            ),
            (
                "toolgate session mode / stateless",
                TOOLGATE_SESSION,
                TOOLGATE,
            ),
            (
                "toolgate proxy token, session mode / stateless",
                TOOLGATE_PROXY_SESSION,
                TOOLGATE_PROXY,
            ),
            (
                "toolgate / FastMCP, both in session mode",
                TOOLGATE_SESSION,
                FASTMCP_SESSION,
            ),
            ("FastMCP session mode / stateless", FASTMCP_SESSION, FASTMCP),
        ] {
            if let Some(value) = rps_ratio(run, top, bottom, c) {
                ratios.push(Ratio {
                    name: name.into(),
                    connections: c,
                    value,
                });
            }
        }
    }

    let ours = subject(run, TOOLGATE);
    let missing = |c: u32| {
        Some(format!(
            "the run had no {c}-connection load of every server needed"
        ))
    };
    let mut targets = vec![
        Target {
            name: "authenticated tools/call throughput, toolgate / FastMCP, 8 connections".into(),
            want: Want::AtLeast,
            limit: 40.0,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE, FASTMCP, 8),
            note: missing(8),
        },
        Target {
            name: "cost of authentication, toolgate auth on / auth off, 8 connections".into(),
            want: Want::AtLeast,
            limit: 0.85,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE, TOOLGATE_NO_AUTH, 8),
            note: missing(8),
        },
        Target {
            name: "cost of authentication, toolgate auth on / auth off, 64 connections".into(),
            want: Want::AtLeast,
            limit: 0.85,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE, TOOLGATE_NO_AUTH, 64),
            note: missing(64),
        },
        Target {
            name: "toolgate p99 latency, 64 connections".into(),
            want: Want::AtMost,
            limit: 5.0,
            unit: "ms",
            measured: ours
                .and_then(|s| s.at(64))
                .map(|p| p.p99_us as f64 / 1000.0),
            note: missing(64),
        },
        Target {
            name: "toolgate resident memory (VmRSS) under load".into(),
            want: Want::AtMost,
            limit: 50.0,
            unit: "MiB",
            measured: ours.map(|s| mib(s.rss_peak_kib)),
            note: Some("toolgate was not run".into()),
        },
        Target {
            name: "JWKS fetches by toolgate in the whole run".into(),
            want: Want::AtMost,
            limit: 1.0,
            unit: "",
            measured: ours.map(|s| s.jwks_fetches as f64),
            note: Some("toolgate was not run".into()),
        },
    ];
    let proxy_note = "the proxy-token row was not run".to_owned();
    targets.push(Target {
        name: "proxy-issued tokens (Redis behind) / direct Auth0 tokens, 8 connections".into(),
        want: Want::AtLeast,
        limit: 0.90,
        unit: "x",
        measured: rps_ratio(run, TOOLGATE_PROXY, TOOLGATE, 8),
        note: Some(proxy_note),
    });
    let pair_note = |rows: &str| Some(format!("the run had no 8-connection load of {rows}"));
    targets.extend([
        Target {
            name: "session mode / stateless, toolgate with the Auth0 token, 8 connections".into(),
            want: Want::AtLeast,
            limit: 0.8,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE_SESSION, TOOLGATE, 8),
            note: pair_note("toolgate (auth on) in both modes"),
        },
        Target {
            name: "session mode / stateless, toolgate with the proxy token (Redis behind), 8 connections"
                .into(),
            want: Want::AtLeast,
            limit: 0.8,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE_PROXY_SESSION, TOOLGATE_PROXY, 8),
            note: pair_note("toolgate (proxy token) in both modes"),
        },
        Target {
            name: "authenticated tools/call in session mode, toolgate / FastMCP (both in session mode), 8 connections"
                .into(),
            want: Want::AtLeast,
            limit: 40.0,
            unit: "x",
            measured: rps_ratio(run, TOOLGATE_SESSION, FASTMCP_SESSION, 8),
            note: pair_note("toolgate and FastMCP in session mode"),
        },
        Target {
            name: "toolgate p50 latency in session mode on one kept-alive connection".into(),
            want: Want::Below,
            limit: 1.0,
            unit: "ms",
            measured: subject(run, TOOLGATE_SESSION)
                .and_then(|s| s.at(1))
                .map(|p| p.p50_us as f64 / 1000.0),
            note: Some("the session-mode row was not run at 1 connection".into()),
        },
    ]);
    for target in &mut targets {
        if target.measured.is_some() {
            target.note = None;
        }
    }
    Judgement { ratios, targets }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

pub fn print(run: &LoadRun, judgement: &Judgement) {
    let m = &run.machine;
    println!();
    println!(
        "{} | {} x {} | {} GiB | Linux {} | {} | {}",
        m.date_utc, m.cpus, m.cpu_model, m.memory_gib, m.kernel, m.wrk, m.fastmcp
    );
    println!(
        "authenticated tools/call of add(20, 22), MCP {}; wrk -t{}, {} s per measurement after a {} s warm-up; \
         servers take turns; medians of {} round(s)",
        run.protocol_version, run.wrk_threads, run.duration_s, run.warm_up_s, run.rounds
    );
    println!(
        "stateless: no session, JSON replies; session: each load in a session of its own (initialize, \
         notifications/initialized), every call with its Mcp-Session-Id on kept-alive connections, SSE replies"
    );
    println!();
    println!(
        "| server | mode | connections | requests/s | min-max requests/s | p50 ms | p99 ms | failed | RSS under load MiB | other work, % of a core |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &run.subjects {
        for p in &s.points {
            println!(
                "| {} | {} | {} | {:.0} | {:.0}-{:.0} | {} | {} | {} | {:.1} | {:.0} |",
                s.label,
                s.mode.name(),
                p.connections,
                p.rps,
                p.rps_min,
                p.rps_max,
                ms(p.p50_us),
                ms(p.p99_us),
                p.failures,
                mib(p.rss_peak_kib),
                p.others_cpu_percent
            );
        }
    }
    println!(
        "failed: replies with a status of 400 or more, replies without the sum, socket errors and timeouts"
    );
    println!();
    println!(
        "| server | RSS idle MiB | RSS peak under load MiB | VmHWM MiB | JWKS fetches | discovery fetches |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for s in &run.subjects {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {} | {} |",
            s.label,
            mib(s.rss_idle_kib),
            mib(s.rss_peak_kib),
            mib(s.hwm_kib),
            s.jwks_fetches,
            s.discovery_fetches
        );
    }
    println!(
        "JWKS fetches in the whole run, all servers: {}",
        run.jwks_fetches_total
    );
    println!();
    println!("| ratio (requests/s) | connections | value |");
    println!("|---|---:|---:|");
    for r in &judgement.ratios {
        println!("| {} | {} | {:.2} |", r.name, r.connections, r.value);
    }
    println!();
    println!("| target | wanted | measured | verdict |");
    println!("|---|---:|---:|---|");
    for t in &judgement.targets {
        let wanted = format!("{} {}{}", t.want.symbol(), t.limit, t.unit);
        let measured = t
            .measured
            .map(|v| format!("{v:.2}{}", t.unit))
            .unwrap_or_else(|| "-".into());
        println!("| {} | {wanted} | {measured} | {} |", t.name, t.verdict());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(want: Want, limit: f64, measured: Option<f64>) -> Target {
        Target {
            name: "t".into(),
            want,
            limit,
            unit: "x",
            measured,
            note: Some("no run".into()),
        }
    }

    #[test]
    fn a_missed_target_says_by_how_much() {
        let slow = target(Want::AtLeast, 40.0, Some(30.0));
        assert_eq!(slow.met(), Some(false));
        assert_eq!(slow.verdict(), "MISSED by 25.0%");
        let late = target(Want::AtMost, 5.0, Some(6.0));
        assert_eq!(late.verdict(), "MISSED by 20.0%");
        assert_eq!(target(Want::AtMost, 5.0, Some(5.0)).verdict(), "met");
        assert_eq!(target(Want::AtLeast, 0.85, Some(0.9)).verdict(), "met");
        assert_eq!(target(Want::Below, 1.0, Some(0.99)).verdict(), "met");
        assert_eq!(target(Want::Below, 1.0, Some(1.0)).verdict(), "MISSED");
    }

    #[test]
    fn an_unmeasured_target_is_neither_met_nor_missed() {
        let t = target(Want::AtLeast, 0.9, None);
        assert_eq!(t.met(), None);
        assert_eq!(t.verdict(), "not measured: no run");
    }
}
