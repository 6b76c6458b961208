use std::rc::Rc;

use toolgate::mcp_tool;

/// Holds an `Rc` across an await.
#[mcp_tool]
async fn counts() -> usize {
    let shared = Rc::new(1);
    tokio::task::yield_now().await;
    *shared
}

fn main() {}
