//! The interactive shell on a terminal: reedline with history, hints, completion and a job-count
//! prompt. Filled in by the interactive-shell work; until then, lines are read plainly.

use super::session::Shell;
use std::io::BufRead;

pub fn run(sh: &mut Shell, runtime: &tokio::runtime::Runtime, _vi: bool) -> i32 {
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        runtime.block_on(sh.execute(&line));
        if sh.exit_requested.is_some() {
            break;
        }
    }
    sh.exit_requested.unwrap_or(sh.last_status)
}
