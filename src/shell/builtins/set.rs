//! `set -o pipefail` / `set +o pipefail`: bash's pipeline status option, the one `set` option
//! llmsh has. `set -o` lists it.

use super::{Help, usage_error};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "set",
    usage: "set [-o|+o] pipefail",
    summary: "set shell options: pipefail makes a pipeline fail when any of its queries fails",
};

pub fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["-o"] | ["+o"] => {
            let state = if sh.pipes.pipefail { "on" } else { "off" };
            println!("pipefail       \t{state}");
            0
        }
        ["-o", "pipefail"] => {
            sh.pipes.pipefail = true;
            0
        }
        ["+o", "pipefail"] => {
            sh.pipes.pipefail = false;
            0
        }
        ["-o" | "+o", other] => usage_error(sh, &HELP, format!("{other}: invalid option name")),
        _ => usage_error(
            sh,
            &HELP,
            "only `-o pipefail` and `+o pipefail` are supported",
        ),
    }
}
