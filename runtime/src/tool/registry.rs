use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool as McpTool};

use super::ToolDef;
use crate::Error;
use crate::permission::{Catalog, Permission, PermissionPolicy};

/// How `#[mcp_tool]` announces a tool to the linker-collected list.
pub struct ToolRegistration(pub &'static ToolDef);

inventory::collect!(ToolRegistration);

/// A tool ready to serve: its definition and the `Tool` listing computed once at start.
pub(crate) struct RegisteredTool {
    pub(crate) def: &'static ToolDef,
    pub(crate) listing: McpTool,
}

/// The set of tools one server publishes, and the permissions they use.
pub struct Registry {
    tools: Vec<RegisteredTool>,
    by_name: HashMap<&'static str, usize>,
    /// Every permission a tool or an `implies` uses, with its description.
    permissions: Vec<(Permission, Cow<'static, str>)>,
    policy: Arc<PermissionPolicy>,
}

impl Registry {
    /// Every `#[mcp_tool]` linked into the binary.
    pub fn from_linked() -> Result<Self, Error> {
        Self::new(inventory::iter::<ToolRegistration>.into_iter().map(|r| r.0))
    }

    /// Exactly these tools.
    pub fn new(defs: impl IntoIterator<Item = &'static ToolDef>) -> Result<Self, Error> {
        let mut tools: Vec<RegisteredTool> = Vec::new();
        let mut by_name = HashMap::new();
        for def in defs {
            if let Some(&index) = by_name.get(def.name) {
                let first: &RegisteredTool = &tools[index];
                if std::ptr::eq(first.def, def) {
                    continue; // the same tool added twice is harmless
                }
                return Err(Error::DuplicateTool {
                    name: def.name,
                    first: first.def.rust_path,
                    second: def.rust_path,
                });
            }
            by_name.insert(def.name, tools.len());
            tools.push(RegisteredTool {
                def,
                listing: listing(def),
            });
        }
        // A stable order makes `tools/list` deterministic whatever the link order was.
        tools.sort_by_key(|t| t.def.name);
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.def.name, i))
            .collect();
        let mut registry = Self {
            tools,
            by_name,
            permissions: Vec::new(),
            policy: Arc::default(),
        };
        registry.catalog(&[])?;
        Ok(registry)
    }

    /// The same tools, with permissions of the catalog that no tool requires (see
    /// `ServerBuilder::permissions`).
    pub fn with_permissions(mut self, permissions: &[Permission]) -> Result<Self, Error> {
        if !permissions.is_empty() {
            self.catalog(permissions)?;
        }
        Ok(self)
    }

    /// Builds the catalog (every permission a tool, `extra` or an `implies` uses) and its policy.
    fn catalog(&mut self, extra: &[Permission]) -> Result<(), Error> {
        let used = self.tools.iter().flat_map(|t| t.def.permissions);
        let catalog = Catalog::checked(used.chain(extra)).map_err(|conflict| {
            Error::ConflictingPermission {
                scope: conflict.scope,
            }
        })?;
        self.permissions = catalog
            .iter()
            .map(|p| (*p, describe(p, &catalog, &self.tools)))
            .collect();
        self.policy = Arc::new(catalog.policy());
        Ok(())
    }

    /// Looks a tool up by its MCP name.
    pub(crate) fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &RegisteredTool> {
        self.tools.iter()
    }

    /// The definitions, sorted by name.
    pub fn defs(&self) -> impl Iterator<Item = &'static ToolDef> + '_ {
        self.tools.iter().map(|t| t.def)
    }

    /// Every permission a tool or an `implies` uses, by scope, sorted: what to create in Auth0 and
    /// what clients may ask for.
    pub fn declared_permissions(&self) -> BTreeSet<&'static str> {
        self.permissions.iter().map(|(p, _)| p.scope()).collect()
    }

    /// The same permissions, sorted by scope, each with its description: its constant's, or, for a
    /// permission written only as a literal, the tools that need it.
    pub fn permissions(&self) -> impl Iterator<Item = (&Permission, &str)> {
        self.permissions.iter().map(|(p, d)| (p, d.as_ref()))
    }

    /// The policy every permission decision of this server's tools goes through.
    pub(crate) fn policy(&self) -> &Arc<PermissionPolicy> {
        &self.policy
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// True when there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

/// A permission's own description; else the tools that need it; else the permissions implying it.
fn describe(
    permission: &Permission,
    catalog: &Catalog,
    tools: &[RegisteredTool],
) -> Cow<'static, str> {
    if let Some(description) = permission.description() {
        return Cow::Borrowed(description);
    }
    let needing: Vec<&str> = tools
        .iter()
        .filter(|t| t.def.permissions.contains(permission))
        .map(|t| t.def.name)
        .collect();
    if !needing.is_empty() {
        return Cow::Owned(format!("Call the tool(s): {}", needing.join(", ")));
    }
    let implying: Vec<&str> = catalog
        .iter()
        .filter(|p| p.implied().contains(permission))
        .map(|p| p.scope())
        .collect();
    Cow::Owned(format!("Implied by: {}", implying.join(", ")))
}

fn listing(def: &'static ToolDef) -> McpTool {
    let input: JsonObject = (def.input_schema)();
    let mut tool = McpTool::new(def.name, def.description, Arc::new(input));
    if let Some(output) = (def.output_schema)() {
        tool = tool.with_raw_output_schema(Arc::new(output));
    }
    tool
}
