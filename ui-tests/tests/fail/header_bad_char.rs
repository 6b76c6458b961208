use toolgate::mcp_tool;

/// Routes.
#[mcp_tool]
async fn route(#[arg(header = "The Region")] region: String) -> String {
    region
}

fn main() {}
