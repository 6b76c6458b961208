use rmcp::model::JsonObject;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ToolCall, ToolError};

/// What a tool's arguments can be. The macro asks this trait, not the type's name, whether an
/// argument is read from the call's `arguments` object and described in the input schema (any
/// `serde::Deserialize + schemars::JsonSchema` type), or injected by the runtime (`AccessToken`,
/// `Option<AccessToken>`, `ToolContext`), so a type alias of an injected type is injected and a
/// type of your own that happens to share its name is a schema argument.
///
/// `Kind` ([`FromArguments`] or [`Injected`]) keeps the blanket impl for schema types apart from
/// the injected ones: `Option<AccessToken>` could otherwise overlap with it in coherence's eyes. Each
/// type has one impl, so the macro writes `ToolArgument<_>` and inference finds it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a tool argument",
    label = "needs `serde::Deserialize` and `schemars::JsonSchema`",
    note = "derive both on your type: `#[derive(serde::Deserialize, schemars::JsonSchema)]`; the runtime injects `toolgate::AccessToken`, `Option<toolgate::AccessToken>` and `toolgate::ToolContext` instead"
)]
pub trait ToolArgument<Kind>: Sized {
    /// False for values the runtime injects: they are not in the input schema, and a client that
    /// sends them is refused like any unknown argument.
    const IN_SCHEMA: bool = true;

    /// Takes the argument called `name` out of the call.
    fn extract(call: &ToolCall, name: &str) -> Result<Self, ToolError>;

    /// Adds the argument to the input schema; injected values add nothing.
    fn describe(schema: &mut InputSchema, name: &str, description: Option<&str>, required: bool);
}

/// The kind of argument read from the call's `arguments` object.
pub enum FromArguments {}

/// The kind of argument the runtime injects.
pub enum Injected {}

impl<T: DeserializeOwned + JsonSchema> ToolArgument<FromArguments> for T {
    fn extract(call: &ToolCall, name: &str) -> Result<Self, ToolError> {
        // A missing argument is read as `null`, so `Option<T>` arguments are optional and every other
        // type reports itself as missing.
        let value = call.arguments().get(name).unwrap_or(&Value::Null);
        T::deserialize(value).map_err(|error| {
            let message = if value.is_null() {
                format!("missing required argument `{name}`")
            } else {
                format!("invalid argument `{name}`: {error}")
            };
            ToolError::invalid_arguments(message).with_data(serde_json::json!({ "argument": name }))
        })
    }

    fn describe(schema: &mut InputSchema, name: &str, description: Option<&str>, required: bool) {
        let argument = schema.generator().subschema_for::<T>();
        schema.argument(name, argument, description, required);
    }
}

/// The arguments of a tool that are in its schema, as the macro lists them: `(name, in schema)`
/// pairs, kept in a constant of exactly the schema arguments' length.
pub const fn schema_arguments<const N: usize, const M: usize>(
    arguments: &[(&'static str, bool); N],
) -> [&'static str; M] {
    let mut names = [""; M];
    let (mut i, mut j) = (0, 0);
    while i < N {
        if arguments[i].1 {
            names[j] = arguments[i].0;
            j += 1;
        }
        i += 1;
    }
    names
}

/// How many of `arguments` are in the schema: the length [`schema_arguments`] returns.
pub const fn count_schema_arguments<const N: usize>(
    arguments: &[(&'static str, bool); N],
) -> usize {
    let (mut i, mut count) = (0, 0);
    while i < N {
        if arguments[i].1 {
            count += 1;
        }
        i += 1;
    }
    count
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

/// The assertion the macro emits for `#[arg(description = "...")]` on an argument, spanned there.
#[track_caller]
pub const fn assert_described_argument(in_schema: bool) {
    if !in_schema {
        panic!(
            "this argument is injected by the runtime and is not in the schema: remove its description"
        );
    }
}

/// The check the macro emits on a tool's future, spanned at the fn's name: a tool runs on any
/// thread of the runtime, so its future must be `Send`, and rustc then names the value that is not.
pub fn tool_future<F>(future: F) -> super::ToolFuture
where
    F: Future<Output = ToolResult> + Send + 'static,
{
    Box::pin(future)
}

/// What a tool's future yields.
type ToolResult = Result<rmcp::model::CallToolResult, ToolError>;
