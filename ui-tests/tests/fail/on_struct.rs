use toolgate::mcp_tool;

#[mcp_tool(description = "Not a fn")]
struct Add;

fn main() {}
