use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rmcp::model::{JsonObject, Tool as McpTool};

use super::ToolDef;
use crate::Error;

/// How `#[mcp_tool]` announces a tool to the linker-collected list.
pub struct ToolRegistration(pub &'static ToolDef);

inventory::collect!(ToolRegistration);

/// A tool ready to serve: its definition and the `Tool` listing computed once at start.
pub(crate) struct RegisteredTool {
    pub(crate) def: &'static ToolDef,
    pub(crate) listing: McpTool,
}

/// The set of tools one server publishes.
pub struct Registry {
    tools: Vec<RegisteredTool>,
    by_name: HashMap<&'static str, usize>,
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
        Ok(Self { tools, by_name })
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

    /// Every permission any tool declares, sorted and without repeats.
    pub fn declared_permissions(&self) -> BTreeSet<&'static str> {
        self.tools
            .iter()
            .flat_map(|t| t.def.permissions.iter().copied())
            .collect()
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

fn listing(def: &'static ToolDef) -> McpTool {
    let input: JsonObject = (def.input_schema)();
    let mut tool = McpTool::new(def.name, def.description, Arc::new(input));
    if let Some(output) = (def.output_schema)() {
        tool = tool.with_raw_output_schema(Arc::new(output));
    }
    tool
}
