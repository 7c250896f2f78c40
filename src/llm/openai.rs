//! The OpenAI-compatible streaming client: `POST {base}/chat/completions` with `stream: true`, read as
//! server-sent events. Every server the kernel supports (llama-server, Ollama, vLLM, KoboldCpp,
//! LM Studio) speaks this; the model is the configured one or else the first of `GET {base}/models`.
//! Kind-specific extras (slot pinning, priorities) are added as [`super::kind`] says.

use super::bounded::{BodyEnd, read_body};
use super::error::{BackendError, parse_retry_after};
use super::kind::{
    BackendKind, ServerTraits, add_extras, llamacpp_context, llamacpp_props, root_url,
};
use super::token_stream::{ByteStream, TokenStream};
use crate::proto::{ChatMessage, Role};
use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// How long the kernel waits for an error's text once the status is known: it is a few hundred
/// bytes, and the status already says what happened.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of an error's text read (200 characters of it are kept).
const ERROR_BODY_BYTES: usize = 4096;
/// The largest whole (not streamed) answer read: far more than any token allowance's worth of text.
const WHOLE_ANSWER_BYTES: usize = 16 << 20;
/// The largest `/models` or `/props` answer read: a long model list is some KiB.
const JSON_BODY_BYTES: usize = 1 << 20;
/// How long a health question may take, answer included: a server too busy to say it is alive in
/// this time counts as down.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// How to reach the backend and how long to wait for it.
#[derive(Clone, Debug)]
pub struct BackendSettings {
    /// Base URL including the `/v1` part, e.g. `http://127.0.0.1:5001/v1`.
    pub url: String,
    /// Model name; `None` asks the server (`GET /models`).
    pub model: Option<String>,
    /// Bearer token, for servers that want one.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// From sending the request to the first streamed event.
    pub first_token_timeout: Duration,
    /// Between two streamed events.
    pub token_timeout: Duration,
    /// The kind of server (`Auto` learns it).
    pub kind: BackendKind,
}

/// One generation to run: the conversation (possibly ending in a partial assistant answer to
/// continue) and how many tokens it may still produce.
#[derive(Clone, Debug)]
pub struct Generation {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    /// The kernel slot it runs on (llama-server pins it to the server slot of that index).
    pub slot: u32,
    /// The kernel's effective priority, higher runs first (passed to servers that take one).
    pub priority: i32,
    /// The model the process asked for; `None` takes the configured one.
    pub model: Option<String>,
    /// The request's sampling parameters, a JSON object's text, forwarded untouched.
    pub params: Option<String>,
}

/// A client for one OpenAI-compatible server. Cheap to share: reqwest pools connections.
pub struct Backend {
    pub(super) http: reqwest::Client,
    pub(super) settings: BackendSettings,
    /// `GET /models`, asked once (for the model name and the server's kind).
    listing: OnceCell<Listing>,
    /// The server's kind and slots, learned once.
    traits: OnceCell<ServerTraits>,
    /// Whether to send vLLM's `priority`; turned off for good when the server rejects it.
    vllm_priority: AtomicBool,
}

/// What `GET {base}/models` says; empty when the server does not list models.
#[derive(Clone, Debug, Default)]
struct Listing {
    model: Option<String>,
    owned_by: Option<String>,
}

impl Backend {
    pub fn new(settings: BackendSettings) -> Backend {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            // Local servers are reached directly; a proxy from the environment would only get in the way.
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Backend {
            http,
            settings,
            listing: OnceCell::new(),
            traits: OnceCell::new(),
            vllm_priority: AtomicBool::new(true),
        }
    }

    pub fn url(&self) -> &str {
        &self.settings.url
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.settings.url.trim_end_matches('/'), path)
    }

    pub(super) fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.settings.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// Sends `req` (authorized) and waits for the response's head until `deadline`: a server that
    /// does not answer by then is a first-token timeout, one that cannot be reached a transport error.
    pub(super) async fn send_by(
        &self,
        req: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<reqwest::Response, BackendError> {
        let url = &self.settings.url;
        tokio::time::timeout_at(deadline, self.authorized(req).send())
            .await
            .map_err(|_| BackendError::FirstTokenTimeout {
                url: url.clone(),
                timeout: self.settings.first_token_timeout,
            })?
            .map_err(|e| BackendError::from_transport(url, &e))
    }

    /// GETs `url` as JSON, answer included, within the first-token timeout. `Ok(None)` for an HTTP
    /// error or a body that is not JSON (or too large to be the answer); `Err` when the server cannot
    /// be reached or does not finish in time. `what` names the answer in that error.
    pub(super) async fn get_json(
        &self,
        url: String,
        what: &'static str,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        let timeout = self.settings.first_token_timeout;
        let deadline = Instant::now() + timeout;
        let resp = self.send_by(self.http.get(url), deadline).await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        match read_body(resp, JSON_BODY_BYTES, deadline).await {
            (body, BodyEnd::Whole) => Ok(serde_json::from_slice(&body).ok()),
            (_, BodyEnd::TimedOut) => Err(BackendError::Slow {
                url: self.settings.url.clone(),
                what,
                timeout,
            }),
            (_, BodyEnd::Cut | BodyEnd::Broken) => Ok(None),
        }
    }

    /// Whether the server says it is up: `GET {root}/health` answers 2xx or, for a server without
    /// that endpoint (404, 405), `GET {base}/models` does; each within [`HEALTH_TIMEOUT`]. Asked when
    /// a request fails in a way that may be the request's own (see
    /// [`BackendError::may_be_request_specific`]).
    pub async fn is_up(&self) -> bool {
        let status = |url: String| async move {
            let req = self.authorized(self.http.get(url));
            match tokio::time::timeout(HEALTH_TIMEOUT, req.send()).await {
                Ok(Ok(resp)) => Some(resp.status()),
                _ => None,
            }
        };
        match status(format!("{}/health", root_url(&self.settings.url))).await {
            Some(s) if s.is_success() => true,
            Some(reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::METHOD_NOT_ALLOWED) => {
                status(self.endpoint("models"))
                    .await
                    .is_some_and(|s| s.is_success())
            }
            _ => false,
        }
    }

    async fn listing(&self) -> Result<&Listing, BackendError> {
        self.listing
            .get_or_try_init(|| async {
                let listing = self
                    .get_json(self.endpoint("models"), "its model list")
                    .await?;
                let first = listing.as_ref().map(|l| &l["data"][0]);
                let text = |key: &str| first.and_then(|m| m[key].as_str()).map(str::to_string);
                Ok(Listing {
                    model: text("id"),
                    owned_by: text("owned_by"),
                })
            })
            .await
    }

    /// The model to ask for: configured, or the first the server lists. A server that does not list
    /// models (HTTP error) gets requests without a model, which single-model servers accept.
    async fn model(&self) -> Result<Option<String>, BackendError> {
        if let Some(m) = &self.settings.model {
            return Ok(Some(m.clone()));
        }
        Ok(self.listing().await?.model.clone())
    }

    /// The server's model list (`GET {base}/models`) as it answers it; `None` when it does not list
    /// models.
    pub async fn models(&self) -> Result<Option<serde_json::Value>, BackendError> {
        self.get_json(self.endpoint("models"), "its model list")
            .await
    }

    /// llama-server's `/props`: `Some((slots, context per slot))` when the server is one.
    async fn llamacpp_props(&self) -> Option<(Option<u32>, Option<u32>)> {
        let url = format!("{}/props", root_url(&self.settings.url));
        let props = self.get_json(url, "its properties").await.ok().flatten()?;
        llamacpp_props(&props).map(|slots| (slots, llamacpp_context(&props)))
    }

    /// The server's kind and slots: configured, or learned once (see [`super::kind`]).
    pub(super) async fn traits(&self) -> Result<&ServerTraits, BackendError> {
        self.traits
            .get_or_try_init(|| async {
                let fixed = |kind| ServerTraits {
                    kind,
                    slots: None,
                    context: None,
                };
                let llamacpp = |(slots, context)| ServerTraits {
                    kind: BackendKind::LlamaCpp,
                    slots,
                    context,
                };
                let traits = match self.settings.kind {
                    BackendKind::OpenAi | BackendKind::Vllm => fixed(self.settings.kind),
                    BackendKind::LlamaCpp => {
                        llamacpp(self.llamacpp_props().await.unwrap_or((None, None)))
                    }
                    BackendKind::Auto => {
                        let owner = self.listing().await?.owned_by.clone();
                        match owner.as_deref().and_then(BackendKind::from_owner) {
                            Some(BackendKind::Vllm) => fixed(BackendKind::Vllm),
                            _ => match self.llamacpp_props().await {
                                Some(props) => llamacpp(props),
                                None => fixed(BackendKind::OpenAi),
                            },
                        }
                    }
                };
                tracing::info!(kind = %traits.kind, slots = ?traits.slots, context = ?traits.context, "backend kind");
                Ok(traits)
            })
            .await
    }

    /// The server's slot count (llama-server's `total_slots`), learning the server's traits now if
    /// they are not yet known; `Ok(None)` when the server does not tell.
    pub async fn learn_slots(&self) -> Result<Option<u32>, BackendError> {
        Ok(self.traits().await?.slots)
    }

    /// The server's slot count, if learned already and told.
    pub fn slots(&self) -> Option<u32> {
        self.traits.get().and_then(|t| t.slots)
    }

    /// The kind of server, once learned (`None` before the first generation with `auto`).
    pub fn kind(&self) -> Option<BackendKind> {
        self.traits.get().map(|t| t.kind)
    }

    /// Starts a streamed generation. Returns once the server has accepted the request (HTTP 2xx);
    /// tokens then come from [`TokenStream::next`]. Dropping the stream closes the connection, which
    /// makes the server stop generating.
    pub async fn open(&self, generation: &Generation) -> Result<TokenStream, BackendError> {
        let prefix = match generation.messages.last() {
            Some(ChatMessage {
                role: Role::Assistant,
                content,
            }) => content.clone(),
            _ => String::new(),
        };
        let model = match &generation.model {
            Some(asked) => Some(asked.clone()),
            None => self.model().await?,
        };
        let traits = self.traits().await?;
        let structured = generation
            .params
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .is_some_and(|params| super::choice::has_structured_parts(&params));
        let resp = loop {
            let mut body = request_body(model.clone(), generation);
            let priority = self
                .vllm_priority
                .load(Ordering::Relaxed)
                .then_some(generation.priority);
            let sent_priority = add_extras(&mut body, traits, generation.slot, priority);
            match self.post(&body).await {
                Err(BackendError::Http {
                    status: 400,
                    body: text,
                    ..
                }) if sent_priority && text.to_ascii_lowercase().contains("priority") => {
                    tracing::warn!(
                        "the backend rejects request priorities; no longer sending them"
                    );
                    self.vllm_priority.store(false, Ordering::Relaxed);
                }
                other => break other?,
            }
        };
        let whole = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if whole {
            return self.whole_answer(resp, &prefix, structured).await;
        }
        let url = self.settings.url.clone();
        let bytes: ByteStream = Box::pin(
            resp.bytes_stream()
                .map(move |chunk| chunk.map_err(|e| BackendError::from_transport(&url, &e))),
        );
        Ok(TokenStream::new(
            bytes,
            &prefix,
            self.settings.url.clone(),
            self.settings.first_token_timeout,
            self.settings.token_timeout,
        )
        .structured(structured))
    }

    /// A server that answered the streamed request with one JSON completion: its body, read within
    /// the first-token timeout and [`WHOLE_ANSWER_BYTES`], as the events its stream would have
    /// carried.
    async fn whole_answer(
        &self,
        resp: reqwest::Response,
        prefix: &str,
        structured: bool,
    ) -> Result<TokenStream, BackendError> {
        let (url, timeout) = (self.settings.url.clone(), self.settings.first_token_timeout);
        let (body, end) = read_body(resp, WHOLE_ANSWER_BYTES, Instant::now() + timeout).await;
        let detail = match end {
            BodyEnd::Whole => None,
            BodyEnd::TimedOut => {
                let what = "its answer";
                return Err(BackendError::Slow { url, what, timeout });
            }
            BodyEnd::Cut => Some(format!(
                "an answer larger than {} MiB",
                WHOLE_ANSWER_BYTES >> 20
            )),
            BodyEnd::Broken => {
                let detail = "the answer broke off".to_string();
                return Err(BackendError::Broken { url, detail });
            }
        };
        let text = match (detail, String::from_utf8(body)) {
            (Some(detail), _) => return Err(BackendError::Malformed { url, detail }),
            (None, Err(_)) => {
                let detail = "invalid UTF-8 in the answer".to_string();
                return Err(BackendError::Malformed { url, detail });
            }
            (None, Ok(text)) => text,
        };
        let token_timeout = self.settings.token_timeout;
        TokenStream::whole(&text, prefix, url, timeout, token_timeout, structured)
    }

    /// POSTs a chat completion request; the response once the server accepted it (HTTP 2xx).
    async fn post(&self, body: &serde_json::Value) -> Result<reqwest::Response, BackendError> {
        let url = self.settings.url.clone();
        let req = self.http.post(self.endpoint("chat/completions")).json(body);
        let deadline = Instant::now() + self.settings.first_token_timeout;
        let resp = self.send_by(req, deadline).await?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let deadline = Instant::now() + ERROR_BODY_TIMEOUT;
        let (body, _) = read_body(resp, ERROR_BODY_BYTES, deadline).await;
        let text = String::from_utf8_lossy(&body);
        Err(BackendError::Http {
            url,
            status: status.as_u16(),
            body: text.chars().take(200).collect(),
            retry_after,
        })
    }
}

fn request_body(model: Option<String>, generation: &Generation) -> serde_json::Value {
    let messages: Vec<_> = generation
        .messages
        .iter()
        .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
        .collect();
    let mut body = serde_json::json!({});
    // The request's own parameters first; the fields the kernel owns are then set over them.
    if let Some(serde_json::Value::Object(params)) = generation
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
    {
        body = serde_json::Value::Object(params);
    }
    body["messages"] = serde_json::Value::Array(messages);
    super::message_parts::restore(&mut body);
    crate::kernel::syscalls::strip(&mut body);
    body["stream"] = serde_json::Value::Bool(true);
    body["max_tokens"] = generation.max_tokens.into();
    body["stream_options"] = serde_json::json!({ "include_usage": true });
    if let Some(model) = model {
        body["model"] = serde_json::Value::String(model);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_body_keeps_the_asked_parameters_and_the_kernel_sets_its_own_fields_over_them() {
        let generation = Generation {
            messages: vec![ChatMessage {
                role: Role::Tool,
                content: "42".into(),
            }],
            max_tokens: 7,
            slot: 0,
            priority: 0,
            model: Some("asked".into()),
            params: Some(r#"{"temperature":0.3,"seed":5,"stream":false,"max_tokens":99}"#.into()),
        };
        let body = request_body(Some("asked".into()), &generation);
        assert_eq!(
            (body["temperature"].clone(), body["seed"].clone()),
            (0.3.into(), 5.into())
        );
        assert_eq!(
            (body["stream"].clone(), body["max_tokens"].clone()),
            (true.into(), 7.into())
        );
        assert_eq!(body["model"], "asked");
        assert_eq!(body["messages"][0]["role"], "tool");
    }
}
