//! `nice [-n N] query ...`: run a query with a niceness (default adjustment 10, as nice(1)).

use super::{Help, query, usage_error};
use crate::shell::parser::Command;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "nice",
    usage: "nice [-n N] query [ARGS...] [&]",
    summary: "run a query with a niceness (-20 highest priority .. 19 lowest; default 10)",
};

pub async fn run(sh: &mut Shell, args: &[String], command: &Command) -> i32 {
    let (adjustment, rest) = match args.first().map(String::as_str) {
        None => {
            println!("0");
            return 0;
        }
        Some("-n") => match args.get(1).map(|v| v.parse::<i8>()) {
            Some(Ok(n)) => (n, &args[2..]),
            Some(Err(_)) => {
                return usage_error(sh, &HELP, format!("{}: invalid adjustment", args[1]));
            }
            None => return usage_error(sh, &HELP, "-n: option requires an argument"),
        },
        Some(flag) if flag.starts_with('-') && flag[1..].parse::<i8>().is_ok() => {
            (flag[1..].parse().unwrap_or(10), &args[1..])
        }
        Some(_) => (10, args),
    };
    match rest.first().map(String::as_str) {
        Some("query") => {}
        Some(other) => {
            return usage_error(
                sh,
                &HELP,
                format!("{other}: only a query can be run under nice"),
            );
        }
        None => return usage_error(sh, &HELP, "a query to run is required"),
    }
    let mut req = match query::parse_args(&rest[1..]) {
        Ok(req) => req,
        Err(message) => return usage_error(sh, &query::HELP, message),
    };
    req.nice = adjustment.clamp(-20, 19);
    query::submit(sh, req, command).await
}
