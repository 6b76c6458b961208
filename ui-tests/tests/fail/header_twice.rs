use toolgate::mcp_tool;

/// Routes.
#[mcp_tool]
async fn route(
    #[arg(header = "Region")] region: String,
    #[arg(header = "region")] zone: String,
) -> String {
    region + &zone
}

fn main() {}
