use toolgate::mcp_tool;

#[mcp_tool(name = "bad name", descripton = "Reads", permissions = [])]
async fn read() {}

fn main() {}
