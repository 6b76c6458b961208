use toolgate::{Permission, mcp_tool};

pub const READ: Permission = Permission::new("tool read", "Read");

#[mcp_tool(description = "Reads", permissions = [READ])]
async fn read() {}

fn main() {}
