//! `Quota`: each token quota of `[quotas]`, what its user or type used of it in the current window,
//! when the window renews, and how many processes wait for it (`quota`). Any user may ask.

use super::Kernel;
use crate::config::quotas::QuotaSubject;
use crate::proto::{QuotaRequest, QuotaRow, QuotaTable, Reply, Response};
use std::sync::Arc;

pub fn handle(kernel: &Arc<Kernel>, _req: QuotaRequest) -> Reply {
    let uses = kernel.read(|s| s.quota_use());
    let quotas = uses
        .into_iter()
        .map(|u| QuotaRow {
            subject: subject_name(u.subject),
            is_type: matches!(u.subject, QuotaSubject::Type(_)),
            used: u.used,
            limit: u.limit.tokens,
            window_ms: u.limit.window_ms,
            renews_in_ms: u.renews_in_ms,
            waiting: u.held,
        })
        .collect();
    Ok(Response::Quotas(QuotaTable { quotas }))
}

/// A user's name (`uid N` when the system does not know it), or a type's.
fn subject_name(subject: QuotaSubject) -> String {
    match subject {
        QuotaSubject::Type(t) => t.name().to_string(),
        QuotaSubject::User(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |u| u.name),
    }
}
