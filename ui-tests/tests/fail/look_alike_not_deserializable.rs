use toolgate::mcp_tool;

/// Named like toolgate's, but toolgate's is not this: it is a schema argument, and cannot be one.
pub struct AccessToken;

/// Uses the look-alike.
#[mcp_tool]
async fn whoami(token: AccessToken) {
    drop(token);
}

fn main() {}
