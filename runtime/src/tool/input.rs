//! Input a tool asks of the client while it runs: completions from the client's model (sampling),
//! answers from its user (elicitation) and its roots.
//!
//! Up to protocol 2025-11-25 the server sends these as requests over the session and waits. From
//! 2026-07-28 on a server may not send requests: the call ends with an `input_required` result that
//! lists the questions, and the client calls the tool again with `inputResponses` and the
//! `requestState` it was given. toolgate keeps the answers of earlier rounds in that state, sealed
//! (HMAC, under the server's own key) and bound to the tool and the caller, so a tool simply asks
//! again from the top each round.

#![allow(deprecated)] // sampling and roots are deprecated by SEP-2577 yet current in every version served

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ClientCapabilities, CreateMessageRequest, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequest, ElicitRequestParams, ElicitResult, InputRequest, InputRequests,
    InputRequiredResult, InputResponses, ListRootsRequest, ListRootsResult, RequestStateCodec,
    SealOptions,
};
use rmcp::service::Peer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ToolError, ToolErrorKind};
use crate::auth::AccessToken;

/// How long a client may take to answer before the sealed state expires: long enough for a person
/// to fill in a form.
const STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// Seals and opens `requestState`s. Each server has its own: keyed from its `JWT_SIGNING_KEY` when
/// it has one, so a state sealed by one replica opens on another and survives a restart; otherwise
/// from a random key of that server alone, and a client whose state cannot be opened is told to call
/// again from the start. Never process-wide: two servers in one process with different signing keys
/// cannot open each other's states.
#[derive(Clone)]
pub(crate) struct StateSealer(Arc<RequestStateCodec>);

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer([redacted])")
    }
}

impl StateSealer {
    pub(crate) fn from_key(key: [u8; 32]) -> Self {
        Self(Arc::new(
            RequestStateCodec::try_new(key.to_vec()).expect("32 bytes are a long enough key"),
        ))
    }

    pub(crate) fn random() -> Self {
        Self::from_key(rand::random())
    }

    fn open(&self, sealed: &str, binding: &str) -> Result<SealedState, ToolError> {
        self.0
            .open_json_with::<SealedState>(sealed, binding.as_bytes())
            .map_err(|_| {
                // One message for every cause (forged, expired, other tool, caller or server), as
                // the codec asks: the detail would help an attacker, not the client.
                ToolError::with_kind(
                    ToolErrorKind::InvalidRequestState,
                    "the requestState was not issued by this server for this tool and \
                     caller, or it has expired: call the tool again without it",
                )
            })
    }

    fn seal(&self, state: &SealedState, binding: &str) -> Result<String, ToolError> {
        self.0
            .seal_json_with(
                state,
                &SealOptions::new()
                    .associated_data(binding.as_bytes())
                    .ttl(STATE_TTL),
            )
            .map_err(|error| ToolError::new(format!("could not seal the request state: {error}")))
    }
}

/// What a sealed `requestState` is bound to: the tool and the caller, so a state cannot be replayed
/// into another tool or by another user.
pub(crate) fn binding(tool: &str, token: Option<&AccessToken>) -> String {
    let subject = token.map(|t| t.claims().sub.as_str()).unwrap_or("");
    format!("toolgate/input\0{tool}\0{subject}")
}

#[derive(Serialize, Deserialize)]
struct SealedState {
    answers: BTreeMap<String, Value>,
}

/// The answers a client has given so far in a 2026-07-28 call: those carried in the verified
/// `requestState` plus the new `inputResponses`, and the server's sealer for the next round.
#[derive(Debug, Default)]
pub(crate) struct ClientInput {
    answers: BTreeMap<String, Value>,
    /// `None` for a call no server received (`ToolCall::new`): it has no client to answer.
    sealer: Option<StateSealer>,
}

impl ClientInput {
    pub(crate) fn open(
        sealer: &StateSealer,
        responses: Option<InputResponses>,
        request_state: Option<&str>,
        binding: &str,
    ) -> Result<Self, ToolError> {
        let mut answers = match request_state {
            None => BTreeMap::new(),
            Some(sealed) => sealer.open(sealed, binding)?.answers,
        };
        // A response that is not an object is no result of any input request; leaving it out
        // makes the tool ask again rather than fail on it.
        answers.extend(
            responses
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, value)| value.is_object()),
        );
        Ok(Self {
            answers,
            sealer: Some(sealer.clone()),
        })
    }
}

/// Questions for the client, asked together by [`ToolContext::ask`](crate::ToolContext::ask).
/// Each has a key that names it across rounds; a second question with the same key replaces the
/// first.
#[derive(Clone, Debug, Default)]
pub struct Questions {
    asked: Vec<(String, InputRequest)>,
}

impl Questions {
    /// No questions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the user for structured input (`elicitation/create`).
    pub fn elicit(self, key: impl Into<String>, params: ElicitRequestParams) -> Self {
        self.with(key, InputRequest::Elicitation(ElicitRequest::new(params)))
    }

    /// Asks the client's model for a completion (`sampling/createMessage`).
    pub fn sample(self, key: impl Into<String>, params: CreateMessageRequestParams) -> Self {
        self.with(
            key,
            InputRequest::CreateMessage(CreateMessageRequest::new(params)),
        )
    }

    /// Asks the client for its roots (`roots/list`).
    pub fn list_roots(self, key: impl Into<String>) -> Self {
        self.with(key, InputRequest::ListRoots(ListRootsRequest::default()))
    }

    /// True when nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.asked.is_empty()
    }

    fn with(mut self, key: impl Into<String>, request: InputRequest) -> Self {
        let key = key.into();
        self.asked.retain(|(existing, _)| *existing != key);
        self.asked.push((key, request));
        self
    }

    /// Refuses, as the specification asks (-32021), questions of a kind the client cannot answer.
    pub(crate) fn check_capabilities(
        &self,
        declared: Option<&ClientCapabilities>,
    ) -> Result<(), ToolError> {
        let declared = declared.cloned().unwrap_or_default();
        let mut missing = ClientCapabilities::default();
        let mut any_missing = false;
        for (_, request) in &self.asked {
            match request {
                InputRequest::Elicitation(_) if declared.elicitation.is_none() => {
                    missing.elicitation = Some(Default::default());
                    any_missing = true;
                }
                InputRequest::CreateMessage(_) if declared.sampling.is_none() => {
                    missing.sampling = Some(Default::default());
                    any_missing = true;
                }
                InputRequest::ListRoots(_) if declared.roots.is_none() => {
                    missing.roots = Some(Default::default());
                    any_missing = true;
                }
                _ => {}
            }
        }
        if any_missing {
            Err(ToolError::missing_client_capability(missing))
        } else {
            Ok(())
        }
    }

    /// 2026-07-28: answers from the client's input, or one `input_required` result asking for
    /// every missing answer, with the answers so far sealed into its `requestState`.
    pub(crate) fn answer_from(
        self,
        input: &ClientInput,
        binding: &str,
    ) -> Result<Answers, ToolError> {
        let mut answers = Answers::default();
        let mut missing = InputRequests::new();
        for (key, request) in self.asked {
            match input.answers.get(&key) {
                Some(answer) if answers_request(&request, answer) => {
                    answers.values.insert(key, answer.clone());
                }
                _ => {
                    missing.insert(key, request);
                }
            }
        }
        if missing.is_empty() {
            return Ok(answers);
        }
        let Some(sealer) = &input.sealer else {
            return Err(ToolError::new(
                "this call came from no server, so it has no key to seal a requestState with",
            ));
        };
        let state = sealer.seal(
            &SealedState {
                answers: input.answers.clone(),
            },
            binding,
        )?;
        Err(ToolError::input_required(InputRequiredResult::new(
            Some(missing),
            Some(state),
        )))
    }

    /// Up to 2025-11-25: each question as a request over the session, in order.
    pub(crate) async fn send(
        self,
        peer: &Peer<RoleServer>,
        tool: &str,
    ) -> Result<Answers, ToolError> {
        let mut answers = Answers::default();
        for (key, request) in self.asked {
            let (method, answer) = match request {
                InputRequest::Elicitation(request) => (
                    "elicitation/create",
                    peer.create_elicitation(request.params)
                        .await
                        .map(serde_json::to_value),
                ),
                InputRequest::CreateMessage(request) => (
                    "sampling/createMessage",
                    peer.create_message(request.params)
                        .await
                        .map(serde_json::to_value),
                ),
                InputRequest::ListRoots(_) => (
                    "roots/list",
                    peer.list_roots().await.map(serde_json::to_value),
                ),
                other => {
                    return Err(ToolError::new(format!(
                        "tool `{tool}` asked `{key}` with a request toolgate cannot send: {other:?}"
                    )));
                }
            };
            let answer = answer
                .map_err(|error| {
                    ToolError::new(format!(
                        "the client did not answer `{key}` ({method}): {error}"
                    ))
                })?
                .map_err(|error| ToolError::new(format!("the answer to `{key}`: {error}")))?;
            answers.values.insert(key, answer);
        }
        Ok(answers)
    }
}

/// Whether `answer` has the shape of a result for `request`.
fn answers_request(request: &InputRequest, answer: &Value) -> bool {
    fn fits<T: DeserializeOwned>(answer: &Value) -> bool {
        T::deserialize(answer).is_ok()
    }
    match request {
        InputRequest::Elicitation(_) => fits::<ElicitResult>(answer),
        InputRequest::CreateMessage(_) => fits::<CreateMessageResult>(answer),
        InputRequest::ListRoots(_) => fits::<ListRootsResult>(answer),
        _ => false,
    }
}

/// The client's answers to [`Questions`], by key.
#[derive(Clone, Debug, Default)]
pub struct Answers {
    values: BTreeMap<String, Value>,
}

impl Answers {
    /// The user's answer to the elicitation asked as `key`.
    pub fn elicitation(&self, key: &str) -> Result<ElicitResult, ToolError> {
        self.get(key)
    }

    /// The model's completion for the sampling request asked as `key`.
    pub fn sampling(&self, key: &str) -> Result<CreateMessageResult, ToolError> {
        self.get(key)
    }

    /// The client's roots, asked as `key`.
    pub fn roots(&self, key: &str) -> Result<ListRootsResult, ToolError> {
        self.get(key)
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, ToolError> {
        let value = self.values.get(key).ok_or_else(|| {
            ToolError::new(format!(
                "no answer for `{key}`: only questions asked together are answered together"
            ))
        })?;
        T::deserialize(value).map_err(|error| {
            ToolError::new(format!(
                "the answer to `{key}` is not of the kind asked: {error}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ElicitationSchema, SamplingMessage};
    use serde_json::json;

    use super::*;

    fn name_form() -> ElicitRequestParams {
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: "Your name?".into(),
            requested_schema: serde_json::from_value::<ElicitationSchema>(json!({
                "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]
            }))
            .unwrap(),
        }
    }

    fn input_required(error: ToolError) -> InputRequiredResult {
        assert_eq!(error.kind(), ToolErrorKind::InputRequired);
        match error.into_response() {
            Ok(rmcp::model::CallToolResponse::InputRequired(result)) => result,
            other => panic!("expected input_required, got {other:?}"),
        }
    }

    #[test]
    fn missing_answers_are_asked_for_together_and_given_ones_carried_over() {
        let sealer = StateSealer::random();
        let binding = binding("t", None);
        let questions = || {
            Questions::new()
                .elicit("name", name_form())
                .sample(
                    "greeting",
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text("hi")], 10),
                )
                .list_roots("roots")
        };

        let first = ClientInput::open(&sealer, None, None, &binding).unwrap();
        let result = input_required(questions().answer_from(&first, &binding).unwrap_err());
        let keys: Vec<&String> = result.input_requests.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["greeting", "name", "roots"]);

        // Round two answers one question; the state from round one is echoed.
        let responses = InputResponses::from([(
            "name".to_owned(),
            json!({"action": "accept", "content": {"name": "Alice"}}),
        )]);
        let second = ClientInput::open(
            &sealer,
            Some(responses),
            result.request_state.as_deref(),
            &binding,
        )
        .unwrap();
        let result = input_required(questions().answer_from(&second, &binding).unwrap_err());
        let keys: Vec<&String> = result.input_requests.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["greeting", "roots"]);

        // Round three answers the rest; the name comes from the sealed state alone.
        let responses = InputResponses::from([
            (
                "greeting".to_owned(),
                json!({"role": "assistant", "content": {"type": "text", "text": "Hello"},
                       "model": "m", "stopReason": "endTurn"}),
            ),
            (
                "roots".to_owned(),
                json!({"roots": [{"uri": "file:///tmp"}]}),
            ),
        ]);
        let third = ClientInput::open(
            &sealer,
            Some(responses),
            result.request_state.as_deref(),
            &binding,
        )
        .unwrap();
        let answers = questions().answer_from(&third, &binding).unwrap();
        let name = answers.elicitation("name").unwrap();
        assert_eq!(name.content.unwrap()["name"], "Alice");
        assert_eq!(answers.roots("roots").unwrap().roots[0].uri, "file:///tmp");
        assert!(answers.sampling("greeting").is_ok());
    }

    #[test]
    fn a_state_opens_only_under_the_sealer_that_sealed_it() {
        let key = rand::random::<[u8; 32]>();
        let (sealer, replica, other) = (
            StateSealer::from_key(key),
            StateSealer::from_key(key),
            StateSealer::random(),
        );
        let binding = binding("t", None);
        let input = ClientInput::open(&sealer, None, None, &binding).unwrap();
        let state = input_required(
            Questions::new()
                .elicit("name", name_form())
                .answer_from(&input, &binding)
                .unwrap_err(),
        )
        .request_state
        .unwrap();
        assert!(ClientInput::open(&replica, None, Some(&state), &binding).is_ok());
        let error = ClientInput::open(&other, None, Some(&state), &binding).unwrap_err();
        assert_eq!(error.kind(), ToolErrorKind::InvalidRequestState);
    }

    #[test]
    fn an_answer_of_the_wrong_shape_is_asked_again() {
        let sealer = StateSealer::random();
        let binding = binding("t", None);
        let responses = InputResponses::from([("name".to_owned(), json!({"roots": []}))]);
        let input = ClientInput::open(&sealer, Some(responses), None, &binding).unwrap();
        let result = input_required(
            Questions::new()
                .elicit("name", name_form())
                .answer_from(&input, &binding)
                .unwrap_err(),
        );
        assert!(result.input_requests.unwrap().contains_key("name"));
    }

    #[test]
    fn a_state_is_refused_when_tampered_with_or_bound_to_another_tool() {
        let sealer = StateSealer::random();
        let binding = binding("t", None);
        let input = ClientInput::open(&sealer, None, None, &binding).unwrap();
        let state = input_required(
            Questions::new()
                .elicit("name", name_form())
                .answer_from(&input, &binding)
                .unwrap_err(),
        )
        .request_state
        .unwrap();
        assert!(ClientInput::open(&sealer, None, Some(&state), &binding).is_ok());

        let mut tampered = state.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for (state, binding) in [
            (tampered.as_str(), binding.clone()),
            (state.as_str(), super::binding("other_tool", None)),
            ("not a state", binding.clone()),
        ] {
            let error = ClientInput::open(&sealer, None, Some(state), &binding).unwrap_err();
            assert_eq!(error.kind(), ToolErrorKind::InvalidRequestState);
        }
    }

    #[test]
    fn questions_need_the_matching_client_capability() {
        let questions = Questions::new().elicit("name", name_form()).list_roots("r");
        let error = questions.check_capabilities(None).unwrap_err();
        assert_eq!(error.kind(), ToolErrorKind::MissingClientCapability);
        match error.into_response() {
            Err(data) => {
                assert_eq!(data.code.0, -32021);
                let data = data.data.unwrap().to_string();
                assert!(
                    data.contains("elicitation") && data.contains("roots"),
                    "{data}"
                );
                assert!(!data.contains("sampling"), "{data}");
            }
            other => panic!("expected a JSON-RPC error, got {other:?}"),
        }
        let declared: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {}, "roots": {}})).unwrap();
        assert!(questions.check_capabilities(Some(&declared)).is_ok());
    }
}
