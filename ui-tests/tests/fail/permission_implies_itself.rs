use toolgate::Permission;

pub const ADMIN: Permission =
    Permission::new("tool:admin", "Everything").implies(&[Permission::new("tool:admin", "Again")]);

fn main() {}
