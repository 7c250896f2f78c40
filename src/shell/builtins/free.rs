//! `free`: the memory of the machine — each backend's context size per slot (and where that number
//! comes from), whose conversation each slot's cache holds, and swap (slot caches saved to disk).

use super::{Help, usage_error};
use crate::proto::{FreeRequest, Request, Response};
use crate::shell::render;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "free",
    usage: "free",
    summary: "show slots, context sizes, what each slot caches, and swap",
};

pub async fn run(sh: &mut Shell, args: &[String]) -> i32 {
    if let Some(arg) = args.first() {
        return usage_error(sh, &HELP, format!("{arg}: unexpected argument"));
    }
    match sh.call(Request::Free(FreeRequest {})).await {
        Ok(Response::Memory(m)) => {
            print!("{}", render::free_table(&m));
            0
        }
        Ok(other) => sh.unexpected("free", &other),
        Err(e) => {
            sh.complain("free", e);
            1
        }
    }
}
