//! `quota`: each token quota (`[quotas]` in the kernel's config) and its use in the current window,
//! like cgroups' `cpu.max` and `cpu.stat` side by side: whose quota, tokens used of how many per
//! window, when the window renews, and how many processes wait for it (STAT `Q`).

use super::{Help, usage_error};
use crate::config::quotas::{QuotaLimit, short_tokens};
use crate::proto::{QuotaRequest, QuotaTable, Request, Response};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "quota",
    usage: "quota",
    summary: "show each user's and type's token quota and its use",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        return usage_error(sh, &HELP, format!("{arg}: unexpected argument"));
    }
    match sh.call(Request::Quota(QuotaRequest {})).await {
        Ok(Response::Quotas(table)) => {
            print!("{}", render(&table));
            0
        }
        Ok(other) => sh.unexpected("quota", &other),
        Err(e) => {
            sh.complain("quota", e);
            1
        }
    }
}

/// The table: one row per quota, or a line saying there are none.
pub fn render(table: &QuotaTable) -> String {
    if table.quotas.is_empty() {
        return "no quotas are set (see [quotas] in the kernel's config)\n".into();
    }
    let mut out = format!(
        "{:<16} {:>8} {:>16} {:>6} {:>10} {:>7}\n",
        "USER/TYPE", "USED", "QUOTA", "USE%", "RENEWS IN", "WAITING"
    );
    for q in &table.quotas {
        let limit = QuotaLimit {
            tokens: q.limit,
            window_ms: q.window_ms,
        };
        let percent = (q.used.saturating_mul(100))
            .checked_div(q.limit)
            .unwrap_or(100);
        let subject: String = q
            .subject
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(16)
            .collect();
        out.push_str(&format!(
            "{:<16} {:>8} {:>16} {:>5}% {:>10} {:>7}\n",
            subject,
            short_tokens(q.used),
            limit.to_string(),
            percent,
            crate::kernel::process::seconds(q.renews_in_ms),
            q.waiting
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::QuotaRow;

    #[test]
    fn the_table_shows_use_of_each_quota_or_says_there_are_none() {
        let row = QuotaRow {
            subject: "alice".into(),
            is_type: false,
            used: 188_000,
            limit: 200_000,
            window_ms: 3_600_000,
            renews_in_ms: 840_000,
            waiting: 2,
        };
        let shown = render(&QuotaTable { quotas: vec![row] });
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[0].starts_with("USER/TYPE"), "{shown}");
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells, ["alice", "188k", "200k/hour", "94%", "840s", "2"]);
        assert!(render(&QuotaTable { quotas: vec![] }).starts_with("no quotas"));
    }
}
