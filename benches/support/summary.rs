//! The benchmark summary: every bench binary adds its figures to `target/bench/summary.json` (flat
//! keys with numbers, plus each key's target, whether it is met, and a note) and rewrites the readable
//! table beside it (`summary.md`), so that after `scripts/bench` both hold every figure of the run.
//! Each figure also records the commit it was measured on (`git rev-parse HEAD`, with `-dirty` when
//! tracked files differ from it) and when (UTC), so a figure kept from an earlier run says so.

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
    let (commit, measured_at) = (commit(), utc_now());
    for f in figures {
        summary.insert(
            f.key.into(),
            f.value.map_or(Value::Null, |v| json!(round(v))),
        );
        for (section, value) in [
            ("targets", json!(f.target)),
            ("met", f.met().map_or(Value::Null, Value::Bool)),
            ("notes", json!(f.note)),
            ("commits", json!(commit)),
            ("measured_at", json!(measured_at)),
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
    let mut out = String::from(
        "| key | value | target | met | how | measured on |\n|---|---:|---|---|---|---|\n",
    );
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
        let met = match section("met", key) {
            Some(Value::Bool(true)) => "yes",
            Some(Value::Bool(false)) => "**no**",
            _ => "skipped",
        };
        let text = |name: &str| section(name, key).and_then(|t| t.as_str().map(String::from));
        let commit = text("commits").unwrap_or_default();
        let (hash, dirty) = commit
            .strip_suffix("-dirty")
            .map_or((commit.as_str(), ""), |hash| (hash, "-dirty"));
        let short: String = hash.chars().take(12).collect();
        out.push_str(&format!(
            "| `{key}` | {shown} | {} | {met} | {} | {short}{dirty} {} |\n",
            text("targets").unwrap_or_default(),
            text("notes").unwrap_or_default(),
            text("measured_at").unwrap_or_default()
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

/// The commit this tree is at, `-dirty` when tracked files differ from it; `unknown` without git.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if changes.is_empty() => head,
        // Changed files, or a status that cannot be read: the figure may not be the commit's.
        _ => format!("{head}-dirty"),
    }
}

/// Now, in UTC, as RFC 3339 (`2026-11-29T18:31:37Z`).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch as an RFC 3339 UTC time (days to a civil date as in Howard
/// Hinnant's `civil_from_days`).
fn rfc3339(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
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
