//! The benchmark summary: every bench binary adds its figures to `target/bench/summary.json` (flat
//! keys with numbers, plus each key's target, whether it is met, and a note) and rewrites the readable
//! table beside it (`summary.md`), so that after `scripts/bench` both hold every figure of the run.

use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// One figure: a ratio or a difference against a baseline measured in the same run.
pub struct Figure {
    pub key: &'static str,
    /// `None` when it could not be measured here (the note says why).
    pub value: Option<f64>,
    /// The target, as `<= 1.5` or `>= 10`.
    pub target: &'static str,
    pub note: String,
}

impl Figure {
    pub fn new(key: &'static str, value: f64, target: &'static str, note: String) -> Figure {
        Figure {
            key,
            value: Some(value),
            target,
            note,
        }
    }

    /// Whether the value meets the target.
    pub fn met(&self) -> Option<bool> {
        let value = self.value?;
        let (op, bound) = self.target.split_once(' ')?;
        let bound: f64 = bound.parse().ok()?;
        match op {
            "<=" => Some(value <= bound),
            ">=" => Some(value >= bound),
            _ => None,
        }
    }
}

/// `target/bench`, found from this binary's path (`target/release/deps/NAME-HASH`).
pub fn dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench")
}

/// Adds `figures` to the summary (replacing earlier values of the same keys) and rewrites the table.
pub fn record(figures: &[Figure]) {
    let dir = dir();
    std::fs::create_dir_all(&dir).expect("create target/bench");
    let path = dir.join("summary.json");
    let mut summary: Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    summary.insert("machine".into(), machine());
    for f in figures {
        summary.insert(
            f.key.into(),
            f.value.map_or(Value::Null, |v| json!(round(v))),
        );
        for (section, value) in [
            ("targets", json!(f.target)),
            ("met", f.met().map_or(Value::Null, Value::Bool)),
            ("notes", json!(f.note)),
        ] {
            let entry = summary
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = entry {
                map.insert(f.key.into(), value);
            }
        }
    }
    let text = serde_json::to_string_pretty(&summary).expect("summary json");
    std::fs::write(&path, text + "\n").expect("write summary.json");
    std::fs::write(dir.join("summary.md"), table(&summary)).expect("write summary.md");
    for f in figures {
        let value = f.value.map_or("-".to_string(), |v| format!("{}", round(v)));
        println!(
            "{:<28} {:>10}  (target {})  {}",
            f.key, value, f.target, f.note
        );
    }
}

fn round(v: f64) -> f64 {
    let digits = if v.abs() >= 100.0 { 1.0 } else { 1000.0 };
    (v * digits).round() / digits
}

/// The figures in the order the table shows them (others follow, by name).
const ORDER: &[&str] = &[
    "rtt_p50_ratio",
    "rtt_p99_ratio",
    "ttft_added_us_p50",
    "ttft_added_us_p99",
    "stream_time_ratio",
    "throughput_ratio",
    "sched_pick_us_100k",
    "sched_pick_growth",
    "queued_bytes_per_process",
    "interactive_ttft_p99_gain",
];

/// The readable table of every figure in `summary`.
pub fn table(summary: &Map<String, Value>) -> String {
    let section = |name: &str, key: &str| summary.get(name).and_then(|s| s.get(key)).cloned();
    let mut out = String::from("| key | value | target | met | how |\n|---|---:|---|---|---|\n");
    let rank = |k: &str| ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len());
    let mut keys: Vec<&String> = summary
        .keys()
        .filter(|k| !summary[*k].is_object())
        .collect();
    keys.sort_by_key(|k| (rank(k), k.to_string()));
    for key in keys {
        let value = &summary[key];
        let shown = if value.is_null() {
            "-".to_string()
        } else {
            value.to_string()
        };
        let target = section("targets", key).and_then(|t| t.as_str().map(String::from));
        let met = match section("met", key) {
            Some(Value::Bool(true)) => "yes",
            Some(Value::Bool(false)) => "**no**",
            _ => "skipped",
        };
        let note = section("notes", key).and_then(|t| t.as_str().map(String::from));
        out.push_str(&format!(
            "| `{key}` | {shown} | {} | {met} | {} |\n",
            target.unwrap_or_default(),
            note.unwrap_or_default()
        ));
    }
    if let Some(m) = summary.get("machine") {
        out.push_str(&format!(
            "\nmachine: {} × {}, Linux {}, load average at the end {}\n",
            m["cpus"],
            m["cpu"].as_str().unwrap_or("?"),
            m["kernel"].as_str().unwrap_or("?"),
            m["load"].as_str().unwrap_or("?")
        ));
    }
    out
}

/// What machine this ran on.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "kernel": kernel.trim(),
        "load": load.join(" "),
    })
}
