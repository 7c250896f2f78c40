//! Learning what a `[[backends]]` entry leaves out: its slots (llama-server's `/props`
//! `total_slots`, else the length of its `/slots`) and its models (the ids of `GET {url}/models`).
//! A server that does not answer in time gets 1 slot and serves whatever it is asked for; the
//! kernel starts anyway and the backend's health is learned from its runs.

use crate::config::backends::BackendSpec;
use crate::llm::{llamacpp_props, root_url};
use std::time::Duration;

/// How long one question may take: a server that is slower to say what it is counts as silent.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(3);

/// What a backend is, configured or learned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    pub slots: u32,
    pub models: Vec<String>,
}

/// Fills in what `spec` leaves out; `known_slots` (a managed server's) comes before asking.
pub async fn discover(spec: &BackendSpec, known_slots: Option<u32>) -> Discovered {
    let http = reqwest::Client::builder()
        .timeout(DISCOVER_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let base = spec.url.trim_end_matches('/');
    let slots = match spec.slots.or(known_slots) {
        Some(n) => n,
        None => asked_slots(&http, base).await.unwrap_or(1),
    };
    let models = if spec.models.is_empty() {
        asked_models(&http, base).await
    } else {
        spec.models.clone()
    };
    tracing::info!(backend = %spec.name, url = %spec.url, slots, ?models, "backend");
    Discovered { slots, models }
}

async fn json(http: &reqwest::Client, url: &str) -> Option<serde_json::Value> {
    let resp = http.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn asked_slots(http: &reqwest::Client, base: &str) -> Option<u32> {
    let root = root_url(base);
    if let Some(Some(n)) = json(http, &format!("{root}/props"))
        .await
        .as_ref()
        .and_then(llamacpp_props)
    {
        return Some(n);
    }
    match json(http, &format!("{root}/slots")).await {
        Some(serde_json::Value::Array(slots)) if !slots.is_empty() => {
            u32::try_from(slots.len()).ok()
        }
        _ => None,
    }
}

/// The model ids a server lists; empty when it lists none (it then serves whatever it is asked).
async fn asked_models(http: &reqwest::Client, base: &str) -> Vec<String> {
    let Some(listing) = json(http, &format!("{base}/models")).await else {
        return Vec::new();
    };
    model_ids(&listing)
}

/// The ids of an OpenAI model listing (`{"data": [{"id": ...}]}`); Ollama's `{"models": [...]}`
/// with `name` or `model` as well.
pub fn model_ids(listing: &serde_json::Value) -> Vec<String> {
    let items = listing["data"]
        .as_array()
        .or_else(|| listing["models"].as_array());
    let mut ids: Vec<String> = items
        .into_iter()
        .flatten()
        .filter_map(|m| {
            ["id", "name", "model"]
                .iter()
                .find_map(|k| m[*k].as_str())
                .map(String::from)
        })
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .collect();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_ids_come_from_openai_and_ollama_listings() {
        let openai = json!({"data": [{"id": "a"}, {"id": "b"}]});
        assert_eq!(model_ids(&openai), ["a", "b"]);
        let ollama = json!({"models": [{"name": "llama3:8b"}]});
        assert_eq!(model_ids(&ollama), ["llama3:8b"]);
        assert!(model_ids(&json!({"data": "nonsense"})).is_empty());
        assert!(model_ids(&json!(null)).is_empty());
    }
}
