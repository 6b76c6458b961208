//! The `#[mcp_tool]` attribute of [toolgate](https://docs.rs/toolgate). Use it through `toolgate`,
//! which re-exports it; the generated code names only `::toolgate::__private` items.
//!
//! ```ignore
//! /// Adds two integers.
//! #[toolgate::mcp_tool(permissions = ["tool:add"])]
//! async fn add(a: i64, #[arg(description = "the second addend")] b: i64) -> i64 {
//!     a + b
//! }
//! ```
//!
//! Keys: `name` (default: the fn's name), `description` (default: the doc comment), `permissions`
//! (paths to `toolgate::Permission` constants and string literals, mixed; each an OAuth scope
//! token, none twice; all are required of the caller, or a permission implying them), `refine_schema`
//! (the path of a `fn(&mut serde_json::Map<String, serde_json::Value>)` that adds keywords, such as
//! `allOf` or `if`/`then`/`else`, to the generated input schema). An argument takes
//! `#[arg(description = "...")]` and, for a `String`, integer or `bool`, `#[arg(header = "Name")]`:
//! clients then also send it as the `Mcp-Param-Name` HTTP header (SEP-2243), and a request whose
//! header and argument disagree is refused. Misuse is a compile error that points at the mistake
//! and names the fix.

mod ast;
mod ctxt;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Publishes an `async fn` as an MCP tool guarded by the permissions it declares.
#[proc_macro_attribute]
pub fn mcp_tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::mcp_tool(attr.into(), item.into()).into()
}
