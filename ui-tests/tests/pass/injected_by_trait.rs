//! Whether an argument is injected is its type's question, not its name's: an alias of
//! `AccessToken` is injected, and a type of the user's own named `AccessToken` is a schema argument.

use toolgate::{Tool, mcp_tool};

type Tok = toolgate::AccessToken;
type MaybeTok = Option<toolgate::AccessToken>;

mod mine {
    /// Not toolgate's: a plain value the client sends.
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    pub struct AccessToken {
        pub value: String,
    }
}

/// Through aliases.
#[mcp_tool]
async fn aliased(token: Tok, maybe: MaybeTok) -> String {
    format!("{} {}", token.claims().sub, maybe.is_some())
}

/// A look-alike.
#[mcp_tool]
async fn look_alike(token: mine::AccessToken) -> String {
    token.value
}

fn main() {
    let aliased = (aliased::DEF.input_schema)();
    assert_eq!(aliased["properties"], serde_json::json!({}), "{aliased:?}");

    let look_alike = (look_alike::DEF.input_schema)();
    assert!(look_alike["properties"].get("token").is_some(), "{look_alike:?}");
    assert_eq!(look_alike["required"], serde_json::json!(["token"]));
}
