//! llama-server's own endpoints beyond chat completions, the ones memory management needs: the
//! context one slot holds (`/props`), the backend's own token count of a conversation
//! (`/apply-template` then `/tokenize`), and a slot's KV cache saved to a file and restored from it
//! (`POST /slots/N?action=save|restore`, on a server started with `--slot-save-path`). Other servers
//! have none of these: every call answers `None` (or an error) there, and the kernel falls back to an
//! estimate and to recomputing.

use super::bounded::{BodyEnd, read_body};
use super::error::BackendError;
use super::kind::{BackendKind, root_url};
use super::openai::Backend;
use crate::proto::ChatMessage;
use tokio::time::Instant;

/// The largest answer read from these endpoints: a token list of a long conversation is a few MiB
/// at most (about 7 bytes a token).
const ANSWER_BYTES: usize = 8 << 20;

/// What a slot save or restore did, as the server reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotFile {
    /// Tokens of the conversation saved or restored.
    pub tokens: u32,
    /// Bytes written or read.
    pub bytes: u64,
}

impl Backend {
    /// Tokens one slot's context holds, when the server says (learned once with the server's kind).
    pub async fn context_size(&self) -> Option<u32> {
        self.traits().await.ok()?.context
    }

    /// Whether the server is llama-server (as learned or configured).
    pub async fn is_llamacpp(&self) -> bool {
        self.traits()
            .await
            .is_ok_and(|t| t.kind == BackendKind::LlamaCpp)
    }

    /// The conversation's length in the model's own tokens, chat template included; `None` when the
    /// server cannot tell (not llama-server, or an error).
    pub async fn count_tokens(&self, messages: &[ChatMessage]) -> Option<u32> {
        if !self.is_llamacpp().await {
            return None;
        }
        let messages: Vec<_> = messages
            .iter()
            .map(|m| serde_json::json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        let templated = self
            .post_root(
                "apply-template",
                &serde_json::json!({ "messages": messages }),
            )
            .await
            .ok()?;
        let prompt = templated["prompt"].as_str()?;
        let body = serde_json::json!({ "content": prompt, "add_special": true });
        let tokens = self.post_root("tokenize", &body).await.ok()?;
        u32::try_from(tokens["tokens"].as_array()?.len()).ok()
    }

    /// What a saved slot cache depends on, as one line: the server's address, its model file
    /// (`model_path` of `/props`) and the context one slot holds. A cache saved under one identity
    /// is only worth restoring under the same one (another model's cache would restore as noise).
    /// `None` when the server does not say.
    pub async fn server_identity(&self) -> Option<String> {
        let url = format!("{}/props", root_url(self.url()));
        let props = self.get_json(url, "its properties").await.ok().flatten()?;
        let model = props["model_path"].as_str()?;
        let context = super::kind::llamacpp_context(&props)?;
        Some(format!("{} {model} n_ctx={context}", root_url(self.url())).replace('\n', " "))
    }

    /// Saves slot `slot`'s KV cache to `filename` in the server's `--slot-save-path`.
    pub async fn save_slot(&self, slot: u32, filename: &str) -> Result<SlotFile, BackendError> {
        let answer = self.slot_action(slot, "save", filename).await?;
        Ok(SlotFile {
            tokens: count(&answer["n_saved"]),
            bytes: answer["n_written"].as_u64().unwrap_or(0),
        })
    }

    /// Restores `filename` into slot `slot`'s KV cache.
    pub async fn restore_slot(&self, slot: u32, filename: &str) -> Result<SlotFile, BackendError> {
        let answer = self.slot_action(slot, "restore", filename).await?;
        Ok(SlotFile {
            tokens: count(&answer["n_restored"]),
            bytes: answer["n_read"].as_u64().unwrap_or(0),
        })
    }

    async fn slot_action(
        &self,
        slot: u32,
        action: &str,
        filename: &str,
    ) -> Result<serde_json::Value, BackendError> {
        let path = format!("slots/{slot}?action={action}");
        self.post_root(&path, &serde_json::json!({ "filename": filename }))
            .await
    }

    /// POSTs `body` to `{root}/{path}` and reads the JSON answer within the first-token timeout.
    async fn post_root(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, BackendError> {
        let url = self.settings.url.clone();
        let timeout = self.settings.first_token_timeout;
        let deadline = Instant::now() + timeout;
        let target = format!("{}/{path}", root_url(&url));
        let resp = self
            .send_by(self.http.post(target).json(body), deadline)
            .await?;
        let status = resp.status();
        let (bytes, end) = read_body(resp, ANSWER_BYTES, deadline).await;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(BackendError::Http {
                url,
                status: status.as_u16(),
                body: text.chars().take(200).collect(),
                retry_after: None,
            });
        }
        let detail = match end {
            BodyEnd::Whole => match serde_json::from_slice(&bytes) {
                Ok(value) => return Ok(value),
                Err(e) => format!("{path}: {e}"),
            },
            BodyEnd::TimedOut => {
                let what = "its answer";
                return Err(BackendError::Slow { url, what, timeout });
            }
            BodyEnd::Cut => format!("{path}: an answer over {} MiB", ANSWER_BYTES >> 20),
            BodyEnd::Broken => format!("{path}: the answer broke off"),
        };
        Err(BackendError::Malformed { url, detail })
    }
}

/// A token count from a JSON number (0 when absent or out of range).
fn count(value: &serde_json::Value) -> u32 {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}
