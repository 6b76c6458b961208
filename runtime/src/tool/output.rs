use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::Value;

use super::ToolError;

/// A value a tool can return. Strings become text; numbers and booleans become their JSON text;
/// values that serialise to an object become `structuredContent` (with the JSON as text too, for
/// clients that read only `content`) and get an `outputSchema`; `()` gives an empty result.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a tool",
    label = "not a tool result",
    note = "return a string, a number, a type deriving `serde::Serialize` and `schemars::JsonSchema`, \
            `toolgate::Contents`, or `Result<T, E>` of one of these with `E: Into<toolgate::ToolError>`"
)]
pub trait ToolOutput {
    /// The schema of `structuredContent`, when the value is an object.
    fn output_schema() -> Option<JsonObject>;
    /// Converts the value into the MCP result.
    fn into_tool_result(self) -> Result<CallToolResult, ToolError>;
}

impl<T: Serialize + JsonSchema> ToolOutput for T {
    fn output_schema() -> Option<JsonObject> {
        let schema = SchemaSettings::draft2020_12()
            .into_generator()
            .into_root_schema_for::<T>();
        match schema.to_value() {
            // MCP requires an output schema to describe an object.
            Value::Object(map) if map.get("type") == Some(&Value::String("object".into())) => {
                Some(map)
            }
            _ => None,
        }
    }

    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        let value = serde_json::to_value(&self).map_err(|error| {
            ToolError::new(format!(
                "the tool's result could not be serialised: {error}"
            ))
        })?;
        Ok(match value {
            Value::Null => CallToolResult::success(Vec::new()),
            Value::String(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Value::Object(_) => {
                let text = value.to_string();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(value);
                result
            }
            other => CallToolResult::success(vec![ContentBlock::text(other.to_string())]),
        })
    }
}

/// Content blocks returned as they are: images, audio, embedded resources, or several at once.
#[derive(Clone, Debug, Default)]
pub struct Contents(pub Vec<ContentBlock>);

impl ToolOutput for Contents {
    fn output_schema() -> Option<JsonObject> {
        None
    }

    fn into_tool_result(self) -> Result<CallToolResult, ToolError> {
        Ok(CallToolResult::success(self.0))
    }
}
