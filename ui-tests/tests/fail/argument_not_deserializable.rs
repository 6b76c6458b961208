use toolgate::mcp_tool;

struct Point {
    x: i64,
}

/// Reads a point.
#[mcp_tool]
async fn read(point: Point) -> i64 {
    point.x
}

fn main() {}
