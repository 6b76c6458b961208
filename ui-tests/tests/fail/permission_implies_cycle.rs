use toolgate::Permission;

pub const READ: Permission = Permission::new("tool:read", "Read").implies(&[WRITE]);
pub const WRITE: Permission = Permission::new("tool:write", "Write").implies(&[READ]);

fn main() {}
