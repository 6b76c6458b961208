//! The tools the MCP conformance suite calls, written as any toolgate user would write them: every
//! one is a `#[mcp_tool]` fn. Auth is off, because the suite cannot send an `Authorization`
//! header. `scripts/conformance` starts this server and runs the suite against it.
//!
//! ```text
//! cargo run --example conformance                       # http://127.0.0.1:8000/mcp
//! cargo run --example conformance -- --listen 127.0.0.1:0
//! ```
//!
//! The first line on stdout is `listening on http://ADDR/mcp`, so a script can start it on a free
//! port.

#![allow(deprecated)] // sampling, roots and logging are deprecated by SEP-2577 but still in the suite

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Parser;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use toolgate::rmcp::model::{
    AudioContent, ContentBlock, CreateMessageRequestParams, ElicitRequestParams, ElicitationAction,
    ElicitationSchema, ResourceContents, SamplingMessage,
};
use toolgate::{Config, Contents, LogLevel, Questions, Server, ToolContext, ToolError, mcp_tool};

/// A 1×1 red pixel, the smallest PNG there is to show.
const RED_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tenth of a second of 8 kHz, 8-bit mono silence as a WAV file.
fn silent_wav() -> String {
    let samples = vec![128u8; 800];
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // PCM header size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&1u16.to_le_bytes()); // block align
    wav.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    BASE64.encode(wav)
}

fn text_resource(uri: &str, mime_type: &str, text: &str) -> ContentBlock {
    ContentBlock::resource(ResourceContents::text(text, uri).with_mime_type(mime_type))
}

/// Returns a simple text response.
#[mcp_tool]
async fn test_simple_text() -> &'static str {
    "This is a simple text response for testing."
}

/// Returns a PNG image.
#[mcp_tool]
async fn test_image_content() -> Contents {
    Contents(vec![ContentBlock::image(RED_PIXEL_PNG, "image/png")])
}

/// Returns a WAV audio clip.
#[mcp_tool]
async fn test_audio_content() -> Contents {
    Contents(vec![ContentBlock::Audio(AudioContent::new(
        silent_wav(),
        "audio/wav",
    ))])
}

/// Returns an embedded text resource.
#[mcp_tool]
async fn test_embedded_resource() -> Contents {
    Contents(vec![text_resource(
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    )])
}

/// Returns text, an image and an embedded resource together.
#[mcp_tool]
async fn test_multiple_content_types() -> Contents {
    Contents(vec![
        ContentBlock::text("Multiple content types test:"),
        ContentBlock::image(RED_PIXEL_PNG, "image/png"),
        text_resource(
            "test://mixed-content-resource",
            "application/json",
            r#"{"test":"data","value":123}"#,
        ),
    ])
}

/// Sends three log messages while it runs.
#[mcp_tool]
async fn test_tool_with_logging(ctx: ToolContext) -> &'static str {
    for message in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ] {
        ctx.log(LogLevel::Info, message).await;
    }
    "Logging test completed"
}

/// Logs one message, only when the request asks for log messages.
#[mcp_tool]
async fn test_logging_tool(ctx: ToolContext) -> &'static str {
    ctx.log(LogLevel::Emergency, "logLevel was requested").await;
    "Logging tool completed"
}

/// Fails the way a tool fails: an error result the model can read.
#[mcp_tool]
async fn test_error_handling() -> Result<String, ToolError> {
    Err(ToolError::new(
        "This tool intentionally returns an error for testing",
    ))
}

/// Reports progress at 0, 50 and 100 of 100.
#[mcp_tool]
async fn test_tool_with_progress(ctx: ToolContext) -> &'static str {
    for (progress, message) in [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Complete")] {
        ctx.progress(progress, Some(100.0), Some(message)).await;
    }
    "Progress test completed"
}

/// Takes a moment, so a client can watch its stream.
#[mcp_tool]
async fn test_reconnection() -> &'static str {
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    "Reconnection test completed"
}

fn completion_request(prompt: &str) -> CreateMessageRequestParams {
    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100)
}

fn first_text(result: &toolgate::rmcp::model::CreateMessageResult) -> String {
    result
        .message
        .content
        .first()
        .and_then(|content| content.as_text())
        .map(|text| text.text.clone())
        .unwrap_or_else(|| "(no text in the response)".to_owned())
}

/// Asks the client's model to complete a prompt.
#[mcp_tool]
async fn test_sampling(
    ctx: ToolContext,
    #[arg(description = "The prompt to send")] prompt: String,
) -> Result<String, ToolError> {
    let completion = ctx
        .sample("completion", completion_request(&prompt))
        .await?;
    Ok(format!("LLM response: {}", first_text(&completion)))
}

/// Needs the client's sampling capability: a client without it gets error -32021.
#[mcp_tool]
async fn test_missing_capability(ctx: ToolContext) -> Result<String, ToolError> {
    let completion = ctx
        .sample("completion", completion_request("Say hello"))
        .await?;
    Ok(format!("LLM response: {}", first_text(&completion)))
}

fn form(message: &str, schema: Value) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_owned(),
        requested_schema: serde_json::from_value::<ElicitationSchema>(schema)
            .expect("the fixture schemas are valid elicitation schemas"),
    }
}

fn action_name(action: &ElicitationAction) -> &'static str {
    match action {
        ElicitationAction::Accept => "accept",
        ElicitationAction::Decline => "decline",
        ElicitationAction::Cancel => "cancel",
        _ => "another action",
    }
}

/// Asks the user for a username and an email address.
#[mcp_tool]
async fn test_elicitation(
    ctx: ToolContext,
    #[arg(description = "The message to show")] message: String,
) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" }
        },
        "required": ["username", "email"]
    });
    let answer = ctx.elicit("contact", form(&message, schema)).await?;
    Ok(format!(
        "User response: action={}, content={}",
        action_name(&answer.action),
        answer.content.unwrap_or(Value::Null)
    ))
}

/// Asks for values that all have defaults (SEP-1034).
#[mcp_tool]
async fn test_elicitation_sep1034_defaults(ctx: ToolContext) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User's name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User's age", "default": 30 },
            "score": { "type": "number", "description": "User's score", "default": 95.5 },
            "status": {
                "type": "string", "description": "User's status",
                "enum": ["active", "inactive", "pending"], "default": "active"
            },
            "verified": { "type": "boolean", "description": "Whether user is verified", "default": true }
        }
    });
    let answer = ctx
        .elicit(
            "defaults",
            form("Please provide values (all have defaults)", schema),
        )
        .await?;
    Ok(format!(
        "Elicitation completed: action={}, content={}",
        action_name(&answer.action),
        answer.content.unwrap_or(Value::Null)
    ))
}

/// Asks with every kind of enum a form can hold (SEP-1330).
#[mcp_tool]
async fn test_elicitation_sep1330_enums(ctx: ToolContext) -> Result<String, ToolError> {
    let choices = |titles: [&str; 3]| {
        json!([
            { "const": "value1", "title": titles[0] },
            { "const": "value2", "title": titles[1] },
            { "const": "value3", "title": titles[2] }
        ])
    };
    let schema = json!({
        "type": "object",
        "properties": {
            "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
            "titledSingle": {
                "type": "string",
                "oneOf": choices(["First Option", "Second Option", "Third Option"])
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "items": { "anyOf": choices(["First Choice", "Second Choice", "Third Choice"]) }
            }
        }
    });
    let answer = ctx
        .elicit("enums", form("Test enum schema improvements", schema))
        .await?;
    Ok(format!(
        "Enum elicitation completed: action={}",
        action_name(&answer.action)
    ))
}

fn name_form(message: &str) -> ElicitRequestParams {
    form(
        message,
        json!({
            "type": "object",
            "properties": { "name": { "type": "string" } },
            "required": ["name"]
        }),
    )
}

fn answered_field(answer: &toolgate::rmcp::model::ElicitResult, field: &str) -> String {
    answer
        .content
        .as_ref()
        .and_then(|content| content.get(field))
        .and_then(Value::as_str)
        .unwrap_or("(not given)")
        .to_owned()
}

/// Streams an input request instead of a result.
#[mcp_tool]
async fn test_streaming_elicitation(ctx: ToolContext) -> Result<String, ToolError> {
    let schema = json!({
        "type": "object",
        "properties": { "value": { "type": "string" } },
        "required": ["value"]
    });
    let answer = ctx
        .elicit("streaming_elicitation", form("Provide a value", schema))
        .await?;
    Ok(format!("Value: {}", answered_field(&answer, "value")))
}

/// Greets the user by the name it asks for.
#[mcp_tool]
async fn test_input_required_result_elicitation(ctx: ToolContext) -> Result<String, ToolError> {
    let answer = ctx
        .elicit("user_name", name_form("What is your name?"))
        .await?;
    Ok(format!("Hello, {}!", answered_field(&answer, "name")))
}

/// Asks the client's model a question.
#[mcp_tool]
async fn test_input_required_result_sampling(ctx: ToolContext) -> Result<String, ToolError> {
    let completion = ctx
        .sample(
            "capital_question",
            completion_request("What is the capital of France?"),
        )
        .await?;
    Ok(format!("Sampling response: {}", first_text(&completion)))
}

/// Lists the client's roots.
#[mcp_tool]
async fn test_input_required_result_list_roots(ctx: ToolContext) -> Result<String, ToolError> {
    let roots = ctx.list_roots("client_roots").await?;
    let uris: Vec<&str> = roots.roots.iter().map(|root| root.uri.as_str()).collect();
    Ok(format!("Client roots: [{}]", uris.join(", ")))
}

fn confirmation() -> ElicitRequestParams {
    form(
        "Please confirm",
        json!({
            "type": "object",
            "properties": { "ok": { "type": "boolean" } },
            "required": ["ok"]
        }),
    )
}

/// Asks for a confirmation; the question rides in the sealed request state.
#[mcp_tool]
async fn test_input_required_result_request_state(ctx: ToolContext) -> Result<String, ToolError> {
    ctx.elicit("confirm", confirmation()).await?;
    Ok("Confirmed: state-ok".to_owned())
}

/// The same flow; a client that alters the request state gets an error.
#[mcp_tool]
async fn test_input_required_result_tampered_state(ctx: ToolContext) -> Result<String, ToolError> {
    ctx.elicit("confirm", confirmation()).await?;
    Ok("Confirmed: state-ok".to_owned())
}

/// Asks for a name, a completion and the roots in one round.
#[mcp_tool]
async fn test_input_required_result_multiple_inputs(ctx: ToolContext) -> Result<String, ToolError> {
    let answers = ctx
        .ask(
            Questions::new()
                .elicit("user_name", name_form("What is your name?"))
                .sample("greeting", completion_request("Generate a greeting"))
                .list_roots("client_roots"),
        )
        .await?;
    let name = answered_field(&answers.elicitation("user_name")?, "name");
    let greeting = first_text(&answers.sampling("greeting")?);
    let roots = answers.roots("client_roots")?.roots.len();
    Ok(format!(
        "All inputs received: {name}, {greeting:?}, {roots} root(s)"
    ))
}

/// Asks two questions, one per round.
#[mcp_tool]
async fn test_input_required_result_multi_round(ctx: ToolContext) -> Result<String, ToolError> {
    let name = ctx
        .elicit("step1", name_form("Step 1: What is your name?"))
        .await?;
    let color_form = form(
        "Step 2: What is your favorite color?",
        json!({
            "type": "object",
            "properties": { "color": { "type": "string" } },
            "required": ["color"]
        }),
    );
    let color = ctx.elicit("step2", color_form).await?;
    Ok(format!(
        "Multi-round flow complete: {} likes {}",
        answered_field(&name, "name"),
        answered_field(&color, "color")
    ))
}

/// Asks only what the client declared it can answer.
#[mcp_tool]
async fn test_input_required_result_capabilities(ctx: ToolContext) -> Result<String, ToolError> {
    let declared = ctx.client_capabilities().unwrap_or_default();
    let mut questions = Questions::new();
    if declared.elicitation.is_some() {
        questions = questions.elicit("user_name", name_form("What is your name?"));
    }
    if declared.sampling.is_some() {
        questions = questions.sample("greeting", completion_request("Generate a greeting"));
    }
    if declared.roots.is_some() {
        questions = questions.list_roots("client_roots");
    }
    if questions.is_empty() {
        return Ok("The client declared nothing to ask with".to_owned());
    }
    ctx.ask(questions).await?;
    Ok("Capability-aware flow complete".to_owned())
}

/// Echoes its argument, which the client also sends in the `Mcp-Param-Value` header.
#[mcp_tool]
async fn test_custom_header(
    #[arg(
        description = "Any text; sent in the body and in a header",
        header = "Value"
    )]
    value: String,
) -> String {
    value
}

#[derive(Deserialize, JsonSchema)]
#[schemars(rename = "address")]
struct Address {
    street: Option<String>,
    city: Option<String>,
}

#[derive(Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
enum ContactMethod {
    Phone,
    Email,
}

/// Records a contact, reachable by phone or email: the schema says which fields that needs.
#[mcp_tool(name = "json_schema_2020_12_tool", refine_schema = contact_rules)]
async fn record_contact(
    name: Option<String>,
    address: Option<Address>,
    contact_method: Option<ContactMethod>,
    phone: Option<String>,
    email: Option<String>,
) -> Result<String, ToolError> {
    // The schema tells clients the rules; the server does not trust that they followed them.
    let reachable = match contact_method {
        Some(ContactMethod::Phone) => phone.is_some(),
        Some(ContactMethod::Email) | None => email.is_some(),
    };
    if !reachable {
        return Err(ToolError::invalid_arguments(
            "give `phone` when `contact_method` is `phone`, and `email` otherwise",
        ));
    }
    let city = address.and_then(|a| a.city.or(a.street));
    Ok(format!(
        "Recorded {}{}",
        name.as_deref().unwrap_or("a contact"),
        city.map(|c| format!(" in {c}")).unwrap_or_default()
    ))
}

/// The cross-field rules of `json_schema_2020_12_tool`, which no single argument can state.
fn contact_rules(schema: &mut serde_json::Map<String, Value>) {
    schema.insert(
        "allOf".into(),
        json!([{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }]),
    );
    schema.insert(
        "if".into(),
        json!({ "properties": { "contact_method": { "const": "phone" } }, "required": ["contact_method"] }),
    );
    schema.insert("then".into(), json!({ "required": ["phone"] }));
    schema.insert("else".into(), json!({ "required": ["email"] }));
    if let Some(Value::Object(address)) = schema
        .get_mut("$defs")
        .and_then(|defs| defs.get_mut("address"))
    {
        address.insert("$anchor".into(), "addressDef".into());
    }
}

/// The tools the MCP conformance suite calls, with auth off. The first line on stdout is
/// `listening on http://ADDR/mcp`.
#[derive(Parser)]
#[command(name = "conformance")]
struct Args {
    /// Address to listen on (port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // `--help` exits 0; a usage error exits 1, as a failure to start does.
    let args = Args::try_parse().unwrap_or_else(|error| {
        let code = if error.use_stderr() { 1 } else { 0 };
        let _ = error.print();
        std::process::exit(code)
    });
    if let Err(error) = run(args.listen).await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run(listen: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base = url::Url::parse(&format!("http://{addr}"))?;
    let server = Server::builder()
        .config(Config::without_auth(base))
        .build()?;
    println!("listening on {}", server.config().resource_uri());
    server.serve_on(listener).await?;
    Ok(())
}
