use toolgate::mcp_tool;

struct Report;

/// Makes a report.
#[mcp_tool]
async fn report() -> Report {
    Report
}

fn main() {}
