//! `sched [POLICY]`: show the scheduling policy (and the others available, the quantum, the slots,
//! the context switches so far, what switching processes out has cost, the slots kept for
//! interactive work, and a warning when `--cpus` exceeds the server's slots), or switch to another
//! at run time: `priority` (types, nice and aging; the default), `rr` (round robin by quantum),
//! `fair` (weighted fair share of tokens per user and process), `mlfq` (short interactive queries
//! first, long generators sink), `edf` (earliest deadline first within a priority level). It ends
//! with the memory in brief: the context per slot and swap (`free` shows each slot).

use super::{Help, usage_error};
use crate::kernel::supervisor::oversubscribed;
use crate::proto::{
    BackendTable, BackendsRequest, FailureKind, FreeRequest, Request, Response, SchedInfo,
    SchedRequest, SchedStatus,
};
use crate::shell::render;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "sched",
    usage: "sched [priority|rr|fair|mlfq|edf]",
    summary: "show or switch the scheduling policy",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if args.len() > 1 {
        return usage_error(sh, &HELP, "too many arguments");
    }
    let request = SchedRequest {
        policy: args.first().cloned(),
    };
    match sh.call(Request::SchedInfo(request.clone())).await {
        Ok(Response::SchedInfo(info)) => {
            print!("{}", render_status(&info.status));
            let cpus = info.status.cpus;
            if let Some(warning) = info.server_slots.and_then(|n| oversubscribed(cpus, n)) {
                println!("warning: {warning}");
            }
            print!("{}", render_switching(&info));
            // The memory in brief (`free` has the detail); an older kernel without it says nothing.
            if let Ok(Response::Memory(m)) = sh.call(Request::Free(FreeRequest {})).await {
                print!("{}", render::memory_summary(&m));
            }
            // Every backend; an older kernel without the verb says nothing.
            if let Ok(Response::Backends(t)) = sh.call(Request::Backends(BackendsRequest {})).await
            {
                print!("{}", render_backends(&t));
            }
            0
        }
        // A kernel older than `SchedInfo` cannot read it (and so switched nothing): ask it the way
        // it understands.
        Err(e) if e.kind() == Some(FailureKind::BadFrame) => status_only(sh, request).await,
        Ok(other) => sh.unexpected("sched", &other),
        Err(e) => {
            sh.complain("sched", e);
            1
        }
    }
}

/// `sched` against a kernel that only answers `Sched`.
async fn status_only(sh: &mut Shell, request: SchedRequest) -> i32 {
    match sh.call(Request::Sched(request)).await {
        Ok(Response::Sched(status)) => {
            print!("{}", render_status(&status));
            0
        }
        Ok(other) => sh.unexpected("sched", &other),
        Err(e) => {
            sh.complain("sched", e);
            1
        }
    }
}

fn render_status(s: &SchedStatus) -> String {
    format!(
        "policy: {}\navailable: {}\nquantum: {} tokens\ncpus: {}\ncontext switches: {}\n",
        s.policy,
        s.available.join(" "),
        s.quantum_tokens,
        s.cpus,
        s.context_switches
    )
}

/// What switching processes out did and cost, and the slots kept for interactive work.
fn render_switching(info: &SchedInfo) -> String {
    let per_resume = match info.resumes_measured {
        0 => String::new(),
        n => format!(", {} a resume", info.reread_prompt_tokens / n),
    };
    let state = if info.reservation_active {
        "kept now"
    } else {
        "free for background work now"
    };
    let reservation = match info.reserved_slots {
        0 => "reserved: none\n".to_string(),
        n => format!(
            "reserved: {n} slot{} for {} and above, {state} (window {})\n",
            if n == 1 { "" } else { "s" },
            info.interactive_type,
            seconds(info.reservation_window_ms),
        ),
    };
    format!(
        "switches: {} ({} at once for more urgent work)\nprompt tokens read again: {}{per_resume}\n{reservation}",
        info.switches, info.urgent_switches, info.reread_prompt_tokens,
    )
}

/// Every backend: health, slots in use, tokens/s, models; then what migrating cost.
fn render_backends(t: &BackendTable) -> String {
    let mut out = format!(
        "backends: {} (migrations {}, model switches {})\n",
        t.backends.iter().filter(|b| !b.removed).count(),
        t.migrations,
        t.model_switches
    );
    out.push_str(&format!(
        "  {:<12} {:<9} {:>6} {:>6} {:<9} {:<24} URL\n",
        "NAME", "STATE", "SLOTS", "TOK/S", "KIND", "MODELS"
    ));
    for b in &t.backends {
        let state = match (b.removed, b.up) {
            (true, _) if b.busy == 0 => continue,
            (true, _) => "draining",
            (false, true) => "up",
            (false, false) => "down",
        };
        let mut models = if b.models.is_empty() {
            "(any)".to_string()
        } else {
            b.models.join(",")
        };
        if b.swap {
            let loaded = b.loaded_model.as_deref().unwrap_or("none");
            models.push_str(&format!(" [swap: {loaded}]"));
        }
        let name = crate::shell::terminal_safe::escape(&b.name);
        out.push_str(&format!(
            "  {:<12} {:<9} {:>6} {:>6} {:<9} {:<24} {}\n",
            name,
            state,
            format!("{}/{}", b.busy, b.slots),
            b.tokens_per_sec,
            crate::shell::terminal_safe::escape(&b.kind),
            crate::shell::terminal_safe::escape(&models),
            crate::shell::terminal_safe::escape(&b.url),
        ));
    }
    out
}

/// Milliseconds as seconds: `10s`, `0.5s`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ProcessType;

    #[test]
    fn switching_shows_counts_cost_and_whether_slots_are_kept() {
        let info = SchedInfo {
            status: SchedStatus {
                policy: "priority".into(),
                available: vec!["priority".into(), "rr".into()],
                quantum_tokens: 8,
                cpus: 4,
                context_switches: 3,
            },
            switches: 3,
            urgent_switches: 2,
            resumes_measured: 3,
            reread_prompt_tokens: 900,
            reserved_slots: 1,
            reservation_active: true,
            interactive_type: ProcessType::User,
            reservation_window_ms: 10_000,
            server_slots: Some(4),
        };
        assert_eq!(
            render_switching(&info),
            "switches: 3 (2 at once for more urgent work)\nprompt tokens read again: 900, 300 a resume\nreserved: 1 slot for USER and above, kept now (window 10s)\n"
        );
        let idle = SchedInfo {
            reserved_slots: 0,
            resumes_measured: 0,
            ..info
        };
        assert!(render_switching(&idle).ends_with("read again: 900\nreserved: none\n"));
    }

    /// A kernel from before `SchedInfo`: it cannot decode it, answers a bad frame and closes.
    async fn older_kernel(listener: tokio::net::UnixListener) {
        use crate::proto::{Connection, Failure, HelloReply, PROTOCOL_VERSION, Reply};
        while let Ok((stream, _)) = listener.accept().await {
            let mut conn = Connection::new(stream);
            let Ok(Some(Request::Hello(_))) = conn.read::<Request>().await else {
                continue;
            };
            let hello = Response::Hello(HelloReply {
                protocol_version: PROTOCOL_VERSION,
                kernel_version: "old".into(),
            });
            let _ = conn.write::<Reply>(&Ok(hello)).await;
            let reply = match conn.read::<Request>().await {
                Ok(Some(Request::Sched(_))) => Ok(Response::Sched(SchedStatus {
                    policy: "priority".into(),
                    available: vec!["priority".into()],
                    quantum_tokens: 32,
                    cpus: 1,
                    context_switches: 0,
                })),
                _ => Err(Failure::new(FailureKind::BadFrame, "unknown variant")),
            };
            let _ = conn.write::<Reply>(&reply).await;
        }
    }

    #[tokio::test]
    async fn sched_falls_back_to_the_older_request_on_an_older_kernel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("k.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
        let kernel = tokio::spawn(older_kernel(listener));
        let mut sh = Shell::new(socket, false);
        assert_eq!(run(&mut sh, &[]).await, 0);
        kernel.abort();
    }
}
