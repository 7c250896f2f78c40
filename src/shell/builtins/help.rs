//! `help [CMD]`: every builtin with a line each, or one builtin's usage.

use super::{ALL, Help};
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "help",
    usage: "help [COMMAND]",
    summary: "list builtins, or show one's usage",
};

pub fn run(sh: &mut Shell, args: &[String]) -> i32 {
    let Some(name) = args.first() else {
        println!("llmsh builtins (help COMMAND for usage):");
        for h in ALL {
            println!("  {:<10} {}", h.name, h.summary);
        }
        println!(
            "Job specs: %N, %%, %+, %-, %PREFIX, %?TEXT. End a query with & to run it in the background."
        );
        return 0;
    };
    match ALL.iter().find(|h| h.name == name) {
        Some(h) => {
            println!("{}: {}", h.name, h.usage);
            println!("    {}", h.summary);
            0
        }
        None => {
            sh.complain("help", format!("no help topics match `{name}'"));
            1
        }
    }
}
