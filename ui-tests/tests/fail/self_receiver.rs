use toolgate::mcp_tool;

struct Counter;

impl Counter {
    /// Counts.
    #[mcp_tool]
    async fn count(&self) -> i64 {
        1
    }
}

fn main() {}
