use toolgate::{Permission, mcp_tool};

pub const GET_USER_INFO: Permission = Permission::new("tool:get_user_info", "Read the profile");

#[mcp_tool(description = "The profile", permissions = [GET_USER_INOF])]
async fn get_user_info() {}

fn main() {}
