//! Permissions as a catalog of constants: paths of every form, mixed with literals, and
//! implications that reach the catalog transitively.

use toolgate::{Permission, Registry, Tool, mcp_tool};

mod perms {
    use toolgate::Permission;

    pub const READ: Permission = Permission::new("tool:read", "Read the records");
    pub const WRITE: Permission = Permission::new("tool:write", "Change the records").implies(&[READ]);
    pub const ADMIN: Permission = Permission::new("tool:admin", "Everything").implies(&[WRITE]);
}

use perms::READ;

const AUDIT: Permission = Permission::new("tool:audit", "Read the audit log");

#[mcp_tool(description = "Reads", permissions = [READ])]
async fn read() {}

#[mcp_tool(description = "Administers", permissions = [crate::perms::ADMIN, self::AUDIT])]
async fn administer() {}

#[mcp_tool(description = "Exports", permissions = [perms::WRITE, "tool:export"])]
async fn export() {}

#[mcp_tool(description = "Audits", permissions = ["tool:audit"])]
async fn audit() {}

fn main() {
    let scopes: Vec<&str> = administer::DEF.permissions.iter().map(|p| p.scope()).collect();
    assert_eq!(scopes, ["tool:admin", "tool:audit"]);

    let registry = Registry::new([read::DEF, administer::DEF, export::DEF, audit::DEF]).unwrap();
    let catalog: Vec<(&str, &str)> = registry
        .permissions()
        .map(|(p, description)| (p.scope(), description))
        .collect();
    assert_eq!(
        catalog,
        [
            ("tool:admin", "Everything"),
            ("tool:audit", "Read the audit log"),
            ("tool:export", "Call the tool(s): export"),
            ("tool:read", "Read the records"),
            ("tool:write", "Change the records"),
        ]
    );
}
