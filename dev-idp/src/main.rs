use std::net::SocketAddr;
use std::process::ExitCode;

use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};

const SECRET_ENV: &str = "TOOLGATE_DEV_CLIENT_SECRET";

const USAGE: &str = "\
toolgate-dev-idp: a local Auth0 stand-in for toolgate dev mode

USAGE:
    toolgate-dev-idp [OPTIONS]

OPTIONS:
    --listen ADDR          loopback address to bind [default: 127.0.0.1:9000]
    --audience URI         API identifier (aud of access tokens) [default: https://api.toolgate.dev]
    --client-id ID         the confidential client's id [default: toolgate-dev-client]
    --client-secret SECRET the client's secret [default: $TOOLGATE_DEV_CLIENT_SECRET or toolgate-dev-secret]
    --permission P         offer and grant permission P (repeatable)
    --auto-approve USER    skip the login page; sign in USER (sub, nickname or email) with every --permission
    --https DIR            serve HTTPS at https://localhost:PORT with a certificate from a CA made at
                           start, whose certificate is written to DIR/ca.pem (trust it with SSL_CERT_FILE)
    -h, --help             print this help
";

struct Args {
    listen: SocketAddr,
    config: DevIdpConfig,
    auto_approve: Option<String>,
    https_dir: Option<std::path::PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut config = DevIdpConfig::default();
    if let Ok(secret) = std::env::var(SECRET_ENV) {
        config.client_secret = secret;
    }
    let mut listen: SocketAddr = "127.0.0.1:9000".parse().expect("valid default address");
    let mut auto_approve = None;
    let mut https_dir = None;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = v
                    .parse()
                    .map_err(|_| format!("--listen: {v:?} is not an IP:PORT address"))?;
            }
            "--audience" => config.audience = value()?,
            "--client-id" => config.client_id = value()?,
            "--client-secret" => config.client_secret = value()?,
            "--permission" => config.permissions.push(value()?),
            "--auto-approve" => auto_approve = Some(value()?),
            "--https" => https_dir = Some(std::path::PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Args {
        listen,
        config,
        auto_approve,
        https_dir,
    }))
}

/// A CA made now, its certificate written to `dir/ca.pem`, and a certificate for localhost from it.
fn make_certificate(
    dir: &std::path::Path,
) -> Result<(toolgate_dev_idp::tls::ServerCertificate, std::path::PathBuf), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--https: cannot create {}: {e}", dir.display()))?;
    let ca = toolgate_dev_idp::tls::TestCa::generate("toolgate dev IdP CA")
        .map_err(|e| e.to_string())?;
    let path = dir.join("ca.pem");
    ca.write_pem(&path)
        .map_err(|e| format!("--https: cannot write {}: {e}", path.display()))?;
    Ok((ca.localhost().map_err(|e| e.to_string())?, path))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut config = args.config;
    if let Some(user) = args.auto_approve {
        config.auto_approve = Some(AutoApprove {
            user,
            permissions: config.permissions.clone(),
        });
    }
    let mut ca_file = None;
    if let Some(dir) = &args.https_dir {
        match make_certificate(dir) {
            Ok((certificate, path)) => {
                config.tls = Some(certificate);
                ca_file = Some(path);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let default_secret = config.client_secret == DevIdpConfig::default().client_secret;
    let idp = match DevIdp::start(config, args.listen).await {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only the well-known default secret is printed; a chosen one stays out of the terminal and scrollback.
    let secret = if default_secret {
        shell_quote(idp.client_secret())
    } else {
        format!("\"${SECRET_ENV}\"")
    };
    println!("toolgate dev IdP (not for production)");
    println!("  issuer:    {}", idp.issuer());
    println!(
        "  discovery: {}/.well-known/openid-configuration",
        idp.url()
    );
    println!("  audience:  {}", idp.audience());
    println!("  client_id: {}", idp.client_id());
    println!("  AUTH0_DOMAIN={}", idp.domain());
    if let Some(ca_file) = &ca_file {
        println!(
            "  CA:        {} (SSL_CERT_FILE for toolgate, curl --cacert)",
            ca_file.display()
        );
    }
    println!();
    println!("Machine token:");
    let curl = match &ca_file {
        Some(ca_file) => format!(
            "curl -s --cacert {}",
            shell_quote(&ca_file.display().to_string())
        ),
        None => "curl -s".to_owned(),
    };
    println!(
        "  {curl} {}/oauth/token -d grant_type=client_credentials --data-urlencode client_id={} --data-urlencode client_secret={} --data-urlencode audience={}",
        idp.url(),
        shell_quote(idp.client_id()),
        secret,
        shell_quote(idp.audience()),
    );
    println!("User token (alice):");
    println!(
        "  {curl} {}/oauth/token -d grant_type=password -d username=alice -d password=x -d 'scope=openid profile email' --data-urlencode client_id={} --data-urlencode client_secret={} --data-urlencode audience={}",
        idp.url(),
        shell_quote(idp.client_id()),
        secret,
        shell_quote(idp.audience()),
    );
    println!("\nCtrl-C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: waiting for Ctrl-C: {e}");
    }
    idp.shutdown().await;
    ExitCode::SUCCESS
}
