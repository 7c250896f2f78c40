//! What kind of server the backend is, and the extras that kind understands. Every supported server
//! speaks the same OpenAI-compatible chat completions; two kinds add what makes context switches cheap
//! or priorities visible:
//!
//! - llama.cpp's `llama-server`: `id_slot` pins a process to the server slot matching the kernel's
//!   slot, and `cache_prompt: true` keeps the slot's cache, so resuming a process on its slot does
//!   not recompute the conversation.
//! - vLLM: `priority` (lower is earlier) carries the kernel's effective priority into vLLM's own
//!   queue. A vLLM not started with priority scheduling rejects the field; the client then stops
//!   sending it.
//!
//! Other servers get plain requests. The kind is configured (`backend.kind`) or, with `auto`, learned
//! once: `owned_by` in `GET {base}/models` (`llamacpp`, `vllm`), else llama-server's `GET {root}/props`.

use std::fmt;
use std::str::FromStr;

/// The kind of backend server, as configured (`backend.kind`: `auto`, `llamacpp`, `vllm`, `openai`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lower")]
pub enum BackendKind {
    /// Learn it from the server.
    #[default]
    Auto,
    LlamaCpp,
    Vllm,
    /// Any other OpenAI-compatible server: no extras.
    OpenAi,
}

impl BackendKind {
    /// Every kind, in the order `backend.kind` lists them.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Auto,
        BackendKind::LlamaCpp,
        BackendKind::Vllm,
        BackendKind::OpenAi,
    ];

    /// The name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::LlamaCpp => "llamacpp",
            BackendKind::Vllm => "vllm",
            BackendKind::OpenAi => "openai",
        }
    }

    /// The kind an `owned_by` of `GET /models` names, if it names one.
    pub(crate) fn from_owner(owned_by: &str) -> Option<BackendKind> {
        match owned_by {
            "llamacpp" => Some(BackendKind::LlamaCpp),
            "vllm" => Some(BackendKind::Vllm),
            _ => None,
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = BackendKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown backend kind `{s}` (one of {})", names.join(", "))
            })
    }
}

/// What the client learned of the server, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServerTraits {
    /// Never `Auto`.
    pub kind: BackendKind,
    /// llama-server's slot count (`total_slots` of `/props`): a slot beyond it is not pinned.
    pub slots: Option<u32>,
    /// Tokens one slot's context holds, when the server says (llama-server's `/props`).
    pub context: Option<u32>,
}

/// The extras for one request: `body` is the JSON request, `slot` the kernel slot, `priority` the
/// kernel's effective priority (higher runs first). Returns whether a vLLM `priority` was added.
pub(crate) fn add_extras(
    body: &mut serde_json::Value,
    traits: &ServerTraits,
    slot: u32,
    priority: Option<i32>,
) -> bool {
    match traits.kind {
        BackendKind::LlamaCpp => {
            if traits.slots.is_none_or(|n| slot < n) {
                body["id_slot"] = slot.into();
            }
            body["cache_prompt"] = true.into();
            false
        }
        BackendKind::Vllm => match priority {
            Some(p) => {
                body["priority"] = (-i64::from(p)).into();
                true
            }
            None => false,
        },
        BackendKind::Auto | BackendKind::OpenAi => false,
    }
}

/// llama-server's `/props` answer, if `value` is one: its slot count, or `Some(None)` when it does not
/// say.
pub(crate) fn llamacpp_props(value: &serde_json::Value) -> Option<Option<u32>> {
    let looks_like =
        value.get("default_generation_settings").is_some() || value.get("total_slots").is_some();
    looks_like.then(|| {
        value["total_slots"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
    })
}

/// The context one slot holds, from llama-server's `/props`: `default_generation_settings.n_ctx`
/// (per slot), else a top-level `n_ctx`.
pub(crate) fn llamacpp_context(value: &serde_json::Value) -> Option<u32> {
    value["default_generation_settings"]["n_ctx"]
        .as_u64()
        .or_else(|| value["n_ctx"].as_u64())
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

/// The server's root URL: the base without a trailing `/v1` (where llama-server serves `/props`).
pub(crate) fn root_url(base: &str) -> &str {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn traits(kind: BackendKind, slots: Option<u32>) -> ServerTraits {
        ServerTraits {
            kind,
            slots,
            context: None,
        }
    }

    #[test]
    fn llamacpp_gets_its_slot_and_prompt_cache_but_no_slot_beyond_the_servers() {
        let mut body = json!({});
        assert!(!add_extras(
            &mut body,
            &traits(BackendKind::LlamaCpp, Some(2)),
            1,
            Some(80)
        ));
        assert_eq!(body, json!({ "id_slot": 1, "cache_prompt": true }));
        let mut body = json!({});
        add_extras(&mut body, &traits(BackendKind::LlamaCpp, Some(2)), 2, None);
        assert_eq!(body, json!({ "cache_prompt": true }));
    }

    #[test]
    fn vllm_gets_the_priority_negated_and_others_get_nothing() {
        let mut body = json!({});
        assert!(add_extras(
            &mut body,
            &traits(BackendKind::Vllm, None),
            0,
            Some(80)
        ));
        assert_eq!(body, json!({ "priority": -80 }));
        let mut body = json!({});
        add_extras(&mut body, &traits(BackendKind::OpenAi, None), 0, Some(80));
        assert_eq!(body, json!({}));
    }

    #[test]
    fn kinds_parse_by_config_name_and_owners_name_them() {
        assert_eq!("vllm".parse(), Ok(BackendKind::Vllm));
        assert!(
            "tgi"
                .parse::<BackendKind>()
                .unwrap_err()
                .contains("auto, llamacpp")
        );
        assert_eq!(
            BackendKind::from_owner("llamacpp"),
            Some(BackendKind::LlamaCpp)
        );
        assert_eq!(BackendKind::from_owner("openai"), None);
    }

    #[test]
    fn props_and_root_url_are_recognised() {
        assert_eq!(llamacpp_props(&json!({ "total_slots": 4 })), Some(Some(4)));
        assert_eq!(
            llamacpp_props(&json!({ "default_generation_settings": {} })),
            Some(None)
        );
        assert_eq!(llamacpp_props(&json!({ "object": "list" })), None);
        let props = json!({ "default_generation_settings": { "n_ctx": 2048 }, "n_ctx": 8192 });
        assert_eq!(llamacpp_context(&props), Some(2048));
        assert_eq!(llamacpp_context(&json!({ "n_ctx": 4096 })), Some(4096));
        assert_eq!(llamacpp_context(&json!({ "n_ctx": 0 })), None);
        assert_eq!(root_url("http://h:1/v1/"), "http://h:1");
        assert_eq!(root_url("http://h:1/api"), "http://h:1/api");
    }
}
