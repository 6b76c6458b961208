//! The benchmark runner behind `bench/run`: toolgate against FastMCP 4.2 and a bare axum ceiling, on
//! one machine in one run, with a dev identity provider that every authenticating server trusts.
//! Targets are judged and printed; the exit status only says whether the run itself worked (every
//! server started, answered `add` correctly before and after load, and wrk ran).

mod cpu;
mod load;
mod machine;
mod memory;
mod micro;
mod proxy;
mod report;
mod soak;
mod subjects;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use load::LoadOptions;
use soak::SoakOptions;
use subjects::Paths;
use tokio::signal::unix::SignalKind;

const USAGE: &str = "\
toolgate-bench: load benchmarks of toolgate (use bench/run, which installs and builds first)

USAGE:
    toolgate-bench [load] [--duration SECS] [--warm-up SECS] [--connections N,N,..] [--only KEY,..]
                          [--rounds N] [--quiet-limit PERCENT] [--patience SECS]
    toolgate-bench soak [--seconds SECS] [--rate PER_SECOND]
    toolgate-bench micro-report CRITERION_DIR

load     every server under wrk, taking turns (defaults: 10 s each, 1,8,32,64 connections,
         1 round; rows show the median of the rounds); keys for --only: toolgate,
         toolgate-noauth, fastmcp, bare-axum, toolgate-proxy (stateless JSON mode), and
         toolgate-session, toolgate-proxy-session, fastmcp-session (one MCP session per
         load, SSE replies). A measurement waits (up to --patience, 120 s) until other work
         uses at most --quiet-limit (10) percent of one core, and is taken again, up to 3
         times, when it was disturbed. A smoke run that proves the whole chain in a few
         minutes: --duration 1 --warm-up 1 --patience 1 (its numbers mean little).
soak     toolgate with auth at a fixed rate (defaults: 600 s at 1000 requests/s)
micro-report
         the criterion hot-path benchmarks against their baselines

Results go to bench/results/ (load.json, soak.json, server logs).
";

enum Command {
    Load(LoadOptions),
    Soak(SoakOptions),
    MicroReport(PathBuf),
    Help,
}

fn parse_args(args: Vec<String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    let mode = match args.peek().map(String::as_str) {
        Some("load" | "soak" | "micro-report") => args.next().expect("peeked"),
        _ => "load".to_owned(),
    };
    let mut load = LoadOptions::default();
    let mut soak = SoakOptions::default();
    let mut criterion = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match (mode.as_str(), arg.as_str()) {
            (_, "-h" | "--help") => return Ok(Command::Help),
            ("load", "--duration") => load.duration = seconds(&value(&arg)?, &arg)?,
            ("load", "--warm-up") => load.warm_up = seconds(&value(&arg)?, &arg)?,
            ("load", "--patience") => load.patience = seconds(&value(&arg)?, &arg)?,
            ("load", "--rounds") => {
                let v = value(&arg)?;
                load.rounds = v
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| format!("--rounds: `{v}` is not a positive count"))?;
            }
            ("load", "--quiet-limit") => {
                let v = value(&arg)?;
                load.quiet_limit = v
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| format!("--quiet-limit: `{v}` is not a percentage"))?;
            }
            ("load", "--connections") => {
                load.connections = value(&arg)?
                    .split(',')
                    .map(|n| match n.trim().parse::<u32>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(format!("--connections: `{n}` is not a positive count")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            ("load", "--only") => {
                load.only = value(&arg)?
                    .split(',')
                    .map(|k| k.trim().to_owned())
                    .collect();
                if let Some(unknown) = load
                    .only
                    .iter()
                    .find(|k| !subjects::SUBJECTS.iter().any(|s| s.key == k.as_str()))
                {
                    return Err(format!("--only: no server is called `{unknown}`"));
                }
            }
            ("soak", "--seconds") => soak.duration = seconds(&value(&arg)?, &arg)?,
            ("soak", "--rate") => {
                let v = value(&arg)?;
                soak.rate = v
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| format!("--rate: `{v}` is not a positive rate"))?;
            }
            ("micro-report", dir) if criterion.is_none() && !dir.starts_with('-') => {
                criterion = Some(PathBuf::from(dir));
            }
            (mode, other) => return Err(format!("unknown argument `{other}` for {mode}")),
        }
    }
    Ok(match mode.as_str() {
        "soak" => Command::Soak(soak),
        "micro-report" => Command::MicroReport(
            criterion.ok_or("micro-report needs the criterion folder (target/criterion)")?,
        ),
        _ => Command::Load(load),
    })
}

fn seconds(value: &str, flag: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(format!(
            "{flag}: `{value}` is not a whole number of seconds"
        )),
    }
}

fn write_json(paths: &Paths, name: &str, value: &impl serde::Serialize) -> Result<(), String> {
    let path = paths.results.join(name);
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("-- wrote {}", path.display());
    Ok(())
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => print!("{USAGE}"),
        Command::MicroReport(dir) => micro::print(&dir)?,
        Command::Load(options) => {
            let paths = Paths::discover()?;
            let run = load::run(&paths, &options).await?;
            let judgement = report::judge(&run);
            report::print(&run, &judgement);
            write_json(
                &paths,
                "load.json",
                &serde_json::json!({ "run": run, "judgement": judgement }),
            )?;
        }
        Command::Soak(options) => {
            let paths = Paths::discover()?;
            let run = soak::run(&paths, &options).await?;
            soak::print(&run);
            write_json(&paths, "soak.json", &run)?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = match parse_args(std::env::args().skip(1).collect()) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Dropping the run on a signal kills the servers and wrk it started (kill_on_drop).
    let mut terminate = match tokio::signal::unix::signal(SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            eprintln!("error: cannot watch for SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        outcome = run(command) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        _ = terminate.recv() => Err("terminated".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn load_is_the_default_mode_and_takes_its_options() {
        let Ok(Command::Load(options)) = parse(&["--connections", "8,64", "--duration", "3"])
        else {
            panic!("not a load run");
        };
        assert_eq!(options.connections, [8, 64]);
        assert_eq!(options.duration, Duration::from_secs(3));
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        let error = |args: &[&str]| match parse(args) {
            Err(message) => message,
            Ok(_) => panic!("{args:?} was accepted"),
        };
        assert!(error(&["--connections", "8,0"]).contains("`0`"));
        assert!(error(&["--only", "nginx"]).contains("`nginx`"));
        assert!(error(&["soak", "--rate", "-5"]).contains("--rate"));
        assert!(error(&["soak", "--connections", "8"]).contains("for soak"));
        assert!(error(&["micro-report"]).contains("criterion folder"));
    }
}
