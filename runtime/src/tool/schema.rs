use rmcp::model::JsonObject;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ToolError;

/// A tool argument: read from the `arguments` object and described in the input schema.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a tool argument",
    label = "needs `serde::Deserialize` and `schemars::JsonSchema`",
    note = "derive both on your type: `#[derive(serde::Deserialize, schemars::JsonSchema)]`"
)]
pub trait ToolArgument: Sized {
    /// Reads the argument called `name`; `None` when the caller left it out.
    fn parse(value: Option<&Value>, name: &str) -> Result<Self, ToolError>;
    /// The argument's schema.
    fn schema(generator: &mut SchemaGenerator) -> Schema;
}

impl<T: DeserializeOwned + JsonSchema> ToolArgument for T {
    fn parse(value: Option<&Value>, name: &str) -> Result<Self, ToolError> {
        // A missing argument is read as `null`, so `Option<T>` arguments are optional and every other
        // type reports itself as missing.
        let value = value.unwrap_or(&Value::Null);
        T::deserialize(value).map_err(|error| {
            let message = if value.is_null() {
                format!("missing required argument `{name}`")
            } else {
                format!("invalid argument `{name}`: {error}")
            };
            ToolError::invalid_arguments(message).with_data(serde_json::json!({ "argument": name }))
        })
    }

    fn schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

/// Builds a tool's input schema one argument at a time (the macro emits the calls).
pub struct InputSchema {
    generator: SchemaGenerator,
    properties: JsonObject,
    required: Vec<Value>,
}

impl Default for InputSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl InputSchema {
    /// An empty object schema.
    pub fn new() -> Self {
        Self {
            generator: SchemaSettings::draft2020_12().into_generator(),
            properties: JsonObject::new(),
            required: Vec::new(),
        }
    }

    /// The generator argument schemas are made with, so shared types land in one `$defs`.
    pub fn generator(&mut self) -> &mut SchemaGenerator {
        &mut self.generator
    }

    /// Adds one argument.
    pub fn argument(
        &mut self,
        name: &str,
        schema: Schema,
        description: Option<&str>,
        required: bool,
    ) {
        let mut value = schema.to_value();
        if let (Some(description), Value::Object(map)) = (description, &mut value) {
            map.insert("description".into(), Value::String(description.to_owned()));
        }
        self.properties.insert(name.to_owned(), value);
        if required {
            self.required.push(Value::String(name.to_owned()));
        }
    }

    /// Marks an argument as mirrored in the `Mcp-Param-<header>` HTTP header (SEP-2243), so
    /// proxies and gateways can route on it without reading the body; the transport checks that the
    /// header and the argument agree.
    pub fn header(&mut self, name: &str, header: &str) {
        if let Some(Value::Object(property)) = self.properties.get_mut(name) {
            property.insert("x-mcp-header".into(), Value::String(header.to_owned()));
        }
    }

    /// The finished schema object.
    pub fn finish(mut self) -> JsonObject {
        let mut schema = JsonObject::new();
        // The dialect is MCP's default; naming it lets any validator read the schema as written.
        schema.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        schema.insert("type".into(), "object".into());
        schema.insert("properties".into(), Value::Object(self.properties));
        if !self.required.is_empty() {
            schema.insert("required".into(), Value::Array(self.required));
        }
        schema.insert("additionalProperties".into(), Value::Bool(false));
        let definitions = self.generator.take_definitions(true);
        if !definitions.is_empty() {
            schema.insert("$defs".into(), Value::Object(definitions));
        }
        schema
    }
}

/// A type whose value can travel in an HTTP header: a string, an integer or a boolean.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be mirrored in an HTTP header",
    label = "not a string, integer or boolean",
    note = "`#[arg(header = \"...\")]` goes on a `String`, integer or `bool` argument; an optional \
            argument cannot have one, because a header is either sent or the call is refused"
)]
pub trait HeaderArgument {}

impl HeaderArgument for String {}
impl HeaderArgument for bool {}
macro_rules! header_integers {
    ($($t:ty),*) => { $(impl HeaderArgument for $t {})* };
}
header_integers!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// The bound the macro checks for `#[arg(header = "...")]`.
pub fn assert_header_argument<T: HeaderArgument>() {}
