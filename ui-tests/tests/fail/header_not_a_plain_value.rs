use toolgate::mcp_tool;

/// Routes.
#[mcp_tool]
async fn route(#[arg(header = "Region")] region: Option<String>) -> String {
    region.unwrap_or_default()
}

fn main() {}
