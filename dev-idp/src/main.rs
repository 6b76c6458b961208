use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};

const SECRET_ENV: &str = "TOOLGATE_DEV_CLIENT_SECRET";

/// toolgate-dev-idp: a local Auth0 stand-in for toolgate dev mode
#[derive(Parser)]
#[command(name = "toolgate-dev-idp")]
struct Args {
    /// Loopback address to bind
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// API identifier (aud of access tokens)
    #[arg(long, value_name = "URI", default_value_t = DevIdpConfig::default().audience)]
    audience: String,
    /// The confidential client's id
    #[arg(long, value_name = "ID", default_value_t = DevIdpConfig::default().client_id)]
    client_id: String,
    /// The client's secret
    #[arg(long, value_name = "SECRET", env = SECRET_ENV, hide_env_values = true,
          default_value_t = DevIdpConfig::default().client_secret)]
    client_secret: String,
    /// Offer and grant permission P (repeatable)
    #[arg(long = "permission", value_name = "P")]
    permissions: Vec<String>,
    /// Skip the login page; sign in USER (sub, nickname or email) with every --permission
    #[arg(long, value_name = "USER")]
    auto_approve: Option<String>,
    /// Serve HTTPS at https://localhost:PORT with a certificate from a CA made at start, whose
    /// certificate is written to DIR/ca.pem (trust it with SSL_CERT_FILE)
    #[arg(long = "https", value_name = "DIR")]
    https_dir: Option<PathBuf>,
}

/// A CA made now, its certificate written to `dir/ca.pem`, and a certificate for localhost from it.
fn make_certificate(
    dir: &Path,
) -> Result<(toolgate_dev_idp::tls::ServerCertificate, PathBuf), String> {
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
    // Help exits 0, a usage error 2.
    let args = Args::parse();
    let mut config = DevIdpConfig {
        audience: args.audience,
        client_id: args.client_id,
        client_secret: args.client_secret,
        auto_approve: args.auto_approve.map(|user| AutoApprove {
            user,
            permissions: args.permissions.clone(),
        }),
        permissions: args.permissions,
        ..DevIdpConfig::default()
    };
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
    let curl = match &ca_file {
        Some(ca_file) => format!(
            "curl -s --cacert {}",
            shell_quote(&ca_file.display().to_string())
        ),
        None => "curl -s".to_owned(),
    };
    // Both commands end with the client's credentials and the API they ask a token for.
    let client = format!(
        "--data-urlencode client_id={} --data-urlencode client_secret={secret} --data-urlencode audience={}",
        shell_quote(idp.client_id()),
        shell_quote(idp.audience()),
    );
    let token_url = format!("{}/oauth/token", idp.url());
    println!("Machine token:");
    println!("  {curl} {token_url} -d grant_type=client_credentials {client}");
    println!("User token (alice):");
    println!(
        "  {curl} {token_url} -d grant_type=password -d username=alice -d password=x -d 'scope=openid profile email' {client}"
    );
    println!("\nCtrl-C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: waiting for Ctrl-C: {e}");
    }
    idp.shutdown().await;
    ExitCode::SUCCESS
}
