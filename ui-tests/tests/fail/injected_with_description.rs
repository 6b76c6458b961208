use toolgate::{AccessToken, mcp_tool};

type Tok = AccessToken;

/// Describes an argument the client never sees.
#[mcp_tool]
async fn whoami(#[arg(description = "the caller")] token: Tok) -> String {
    token.claims().sub.clone()
}

fn main() {}
