//! `top [-u]`: a full-screen live view of the kernel's processes and rates (see
//! [`crate::shell::top`]). Every user's processes by default, other users' prompts hidden as `ps -a`
//! shows them; `-u` shows only yours.

use super::{Help, usage_error};
use crate::shell::session::Shell;
use std::io::IsTerminal;

pub const HELP: Help = Help {
    name: "top",
    usage: "top [-u]",
    summary: "watch processes live (keys as htop: arrows, k kill, s/c stop/cont, n/N nice, P/T/M sort, / filter, q quit)",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let all_users = match args {
        [] => true,
        [flag] if flag == "-u" => false,
        _ => return usage_error(sh, &HELP, "unexpected arguments"),
    };
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        sh.complain("top", "needs a terminal");
        return 1;
    }
    match crate::shell::top::run(sh, all_users).await {
        Ok(status) => status,
        Err(e) => {
            sh.complain("top", e);
            1
        }
    }
}
