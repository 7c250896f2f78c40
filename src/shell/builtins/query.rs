//! `query`: create a process. In the foreground it streams the answer as it comes; with `&` it prints
//! `[JOB] PID` and returns. Also takes the prototype's form `query user="..." system="..."`.
//! `--model NAME` asks for another model than the kernel's; `--continue PID` asks a follow-up question
//! in the context of a finished process (a new process whose conversation is that one's and its
//! answer, then the question). `--deadline 30s` says when the answer must be done: a process still
//! running then ends with status 152 (SIGXCPU), its output kept, unless `--deadline-soft`, when it
//! only loses the urgency its deadline gave it. `--syscalls` offers the process the system calls
//! (spawn, wait, kill, ps); `--must-call` (which implies `--syscalls`) makes its first answer a call.

use super::{Help, usage_error};
use crate::proto::{
    Deadline, Pid, ProcessType, Request, Response, SubmitAskRequest, SubmitByRequest, SubmitRequest,
};
use crate::shell::foreground;
use crate::shell::jobs::JobState;
use crate::shell::parser::Command;
use crate::shell::session::Shell;

pub const HELP: Help = Help {
    name: "query",
    usage: "query [--system TEXT] [--type TYPE] [--max-tokens N] [--nice N] [--model NAME] \
            [--continue PID] [--deadline TIME [--deadline-soft]] [--syscalls [--must-call]] PROMPT... [&]",
    summary: "run a prompt as a process (foreground, or background with &)",
};

/// A parsed `query`: the request, and what only `SubmitAsk` carries. Reads as its request.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryArgs {
    pub submit: SubmitRequest,
    pub model: Option<String>,
    pub continue_from: Option<Pid>,
    /// `--deadline` (and `--deadline-soft`), which only `SubmitBy` carries.
    pub deadline: Option<Deadline>,
    /// `--syscalls`: the process may spawn, wait for and kill processes of its own.
    pub syscalls: bool,
    /// `--must-call`: with `syscalls`, the first answer is a tool call (`tool_choice: "required"`).
    pub must_call: bool,
}

impl std::ops::Deref for QueryArgs {
    type Target = SubmitRequest;
    fn deref(&self) -> &SubmitRequest {
        &self.submit
    }
}

impl std::ops::DerefMut for QueryArgs {
    fn deref_mut(&mut self) -> &mut SubmitRequest {
        &mut self.submit
    }
}

impl QueryArgs {
    /// The request to send: plain `Submit` unless a model or a follow-up asks for `SubmitAsk`, so an
    /// older kernel still serves every query it can.
    fn into_request(self) -> Request {
        if self.syscalls {
            let linked = crate::proto::SubmitLinkedRequest {
                ask: SubmitAskRequest {
                    submit: self.submit,
                    model: self.model,
                    continue_from: self.continue_from,
                },
                input_from: None,
                input: None,
                pgid: None,
                deadline: self.deadline,
            };
            return syscalls_request(self.must_call, linked);
        }
        if self.model.is_none() && self.continue_from.is_none() && self.deadline.is_none() {
            return Request::Submit(self.submit);
        }
        let ask = SubmitAskRequest {
            submit: self.submit,
            model: self.model,
            continue_from: self.continue_from,
        };
        if ask.continue_from.is_some() {
            // A follow-up's parent is the process it continues (PPID in `ps -l`).
            return Request::SubmitLinked(crate::proto::SubmitLinkedRequest {
                ask,
                input_from: None,
                input: None,
                pgid: None,
                deadline: self.deadline,
            });
        }
        match self.deadline {
            Some(deadline) => Request::SubmitBy(SubmitByRequest { ask, deadline }),
            None => Request::SubmitAsk(ask),
        }
    }
}

/// The request of a `--syscalls` query: `SubmitMustCall` when its first answer must be a call.
pub fn syscalls_request(must_call: bool, linked: crate::proto::SubmitLinkedRequest) -> Request {
    if must_call {
        Request::SubmitMustCall(linked)
    } else {
        Request::SubmitSyscalls(linked)
    }
}

/// Parses `query`'s arguments into a request (without `attach`).
pub fn parse_args(args: &[String]) -> Result<QueryArgs, String> {
    let mut req = QueryArgs {
        submit: SubmitRequest {
            prompt: String::new(),
            system: None,
            process_type: ProcessType::User,
            max_tokens: None,
            nice: 0,
            attach: false,
        },
        model: None,
        continue_from: None,
        deadline: None,
        syscalls: false,
        must_call: false,
    };
    let mut soft = false;
    let mut words: Vec<&str> = Vec::new();
    let mut it = args.iter();
    let mut flags_done = false;
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag}: option requires an argument"))
        };
        match arg.as_str() {
            "--" if !flags_done => flags_done = true,
            "-s" | "--system" if !flags_done => req.system = Some(value(arg)?),
            "-t" | "--type" if !flags_done => req.process_type = value(arg)?.parse()?,
            "-m" | "--max-tokens" if !flags_done => {
                let v = value(arg)?;
                req.max_tokens = Some(
                    v.parse()
                        .map_err(|_| format!("{v}: invalid number of tokens"))?,
                );
            }
            "--model" if !flags_done => req.model = Some(value(arg)?),
            "--deadline" if !flags_done => {
                let within_ms = Deadline::parse_duration_ms(&value(arg)?)?;
                req.deadline = Some(Deadline {
                    within_ms,
                    soft: false,
                });
            }
            "--deadline-soft" if !flags_done => soft = true,
            "--syscalls" if !flags_done => req.syscalls = true,
            "--must-call" if !flags_done => {
                req.syscalls = true;
                req.must_call = true;
            }
            "-c" | "--continue" if !flags_done => {
                let v = value(arg)?;
                req.continue_from = Some(v.parse().map_err(|_| format!("{v}: invalid pid"))?);
            }
            "-n" | "--nice" if !flags_done => {
                let v = value(arg)?;
                req.nice = v.parse().map_err(|_| format!("{v}: invalid nice value"))?;
            }
            flag if !flags_done && flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("{flag}: invalid option"));
            }
            word => {
                flags_done = true;
                words.push(word);
            }
        }
    }
    if words.iter().any(|w| w.starts_with("user=")) {
        for word in words {
            match word.split_once('=') {
                Some(("user", v)) => req.prompt = v.to_string(),
                Some(("system", v)) => req.system = Some(v.to_string()),
                Some(("type", v)) => req.process_type = v.parse()?,
                _ => return Err(format!("{word}: expected user=\"...\" or system=\"...\"")),
            }
        }
    } else {
        req.prompt = words.join(" ");
    }
    if req.prompt.trim().is_empty() {
        return Err("a prompt is required".into());
    }
    match req.deadline.as_mut() {
        Some(deadline) => deadline.soft = soft,
        None if soft => return Err("--deadline-soft: needs --deadline TIME".into()),
        None => {}
    }
    Ok(req)
}

pub async fn run(sh: &mut Shell, args: &[String], command: &Command) -> i32 {
    match parse_args(args) {
        Ok(req) => submit(sh, req, command).await,
        Err(message) => usage_error(sh, &HELP, message),
    }
}

/// Submits a request, in the foreground or the background as `command` says.
pub async fn submit(sh: &mut Shell, mut req: QueryArgs, command: &Command) -> i32 {
    req.attach = !command.background;
    let mut client = match sh.client().await {
        Ok(c) => c,
        Err(e) => {
            sh.complain("query", e);
            return 1;
        }
    };
    let pid = match client.call(req.into_request()).await {
        Ok(Response::Submitted(s)) => s.pid,
        Ok(other) => {
            sh.complain(
                "query",
                crate::shell::client::ClientError::unexpected(&other),
            );
            return 1;
        }
        Err(e) => {
            sh.complain("query", e);
            return 1;
        }
    };
    if command.background {
        let id = sh.jobs().add(pid, &command.text, JobState::Running);
        println!("[{id}] {pid}");
        sh.watch_job(pid);
        return 0;
    }
    foreground::attach(sh, client, pid, &command.text, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn flags_and_prompt_words_are_parsed() {
        let r = parse_args(&args(&[
            "--system",
            "be brief",
            "-t",
            "system",
            "--max-tokens",
            "9",
            "-n",
            "5",
            "hi",
            "there",
        ]))
        .unwrap();
        assert_eq!(r.prompt, "hi there");
        assert_eq!(r.system.as_deref(), Some("be brief"));
        assert_eq!(r.process_type, ProcessType::System);
        assert_eq!((r.max_tokens, r.nice), (Some(9), 5));
    }

    #[test]
    fn model_and_continue_make_a_submit_ask_and_plain_queries_stay_submit() {
        let r = parse_args(&args(&[
            "--model",
            "qwen",
            "--continue",
            "7",
            "and",
            "then?",
        ]))
        .unwrap();
        assert_eq!(
            (r.model.as_deref(), r.continue_from),
            (Some("qwen"), Some(Pid(7)))
        );
        let Request::SubmitLinked(linked) = r.into_request() else {
            panic!("expected SubmitLinked")
        };
        assert_eq!(linked.ask.submit.prompt, "and then?");
        let plain = parse_args(&args(&["hi"])).unwrap();
        assert!(matches!(plain.into_request(), Request::Submit(_)));
        assert!(
            parse_args(&args(&["--continue", "x", "hi"]))
                .unwrap_err()
                .contains("invalid pid")
        );
    }

    #[test]
    fn a_deadline_makes_a_submit_by_and_soft_needs_a_deadline() {
        let r = parse_args(&args(&["--deadline", "30s", "--deadline-soft", "hi"])).unwrap();
        let Request::SubmitBy(by) = r.into_request() else {
            panic!("expected SubmitBy")
        };
        assert_eq!(
            by.deadline,
            Deadline {
                within_ms: 30_000,
                soft: true
            }
        );
        assert_eq!(by.ask.submit.prompt, "hi");
        let hard = parse_args(&args(&["--deadline", "2m", "hi"])).unwrap();
        assert_eq!(
            hard.deadline.map(|d| (d.within_ms, d.soft)),
            Some((120_000, false))
        );
        for (words, want) in [
            (&["--deadline-soft", "hi"][..], "needs --deadline"),
            (&["--deadline", "soon", "hi"][..], "invalid duration"),
            (&["--deadline"][..], "requires an argument"),
        ] {
            let err = parse_args(&args(words)).unwrap_err();
            assert!(err.contains(want), "{words:?}: {err}");
        }
    }

    #[test]
    fn prototype_form_is_accepted() {
        let r = parse_args(&args(&["user=Calculate fib", "system=You are a bot"])).unwrap();
        assert_eq!(r.prompt, "Calculate fib");
        assert_eq!(r.system.as_deref(), Some("You are a bot"));
    }

    #[test]
    fn bad_arguments_are_rejected_with_a_reason() {
        for (words, want) in [
            (&[][..], "a prompt is required"),
            (&["--max-tokens"][..], "requires an argument"),
            (&["--max-tokens", "lots", "hi"][..], "invalid number"),
            (&["--bogus", "hi"][..], "invalid option"),
            (&["--type", "root", "hi"][..], "unknown process type"),
            (&["user=hi", "colour=red"][..], "expected user="),
        ] {
            let err = parse_args(&args(words)).unwrap_err();
            assert!(err.contains(want), "{words:?}: {err}");
        }
    }

    #[test]
    fn words_after_the_prompt_starting_with_dash_are_prompt_text() {
        let r = parse_args(&args(&["explain", "-x"])).unwrap();
        assert_eq!(r.prompt, "explain -x");
    }

    #[test]
    fn syscalls_makes_a_submit_syscalls() {
        let r = parse_args(&args(&["--syscalls", "plan", "it"])).unwrap();
        assert!(r.syscalls);
        let Request::SubmitSyscalls(linked) = r.into_request() else {
            panic!("expected SubmitSyscalls")
        };
        assert_eq!(linked.ask.submit.prompt, "plan it");
        assert!(!parse_args(&args(&["plan"])).unwrap().syscalls);
    }

    #[test]
    fn must_call_makes_a_submit_must_call_and_implies_syscalls() {
        for words in [
            &["--syscalls", "--must-call", "go"][..],
            &["--must-call", "go"],
        ] {
            let r = parse_args(&args(words)).unwrap();
            assert!(r.syscalls && r.must_call, "{words:?}");
            let Request::SubmitMustCall(linked) = r.into_request() else {
                panic!("expected SubmitMustCall")
            };
            assert_eq!(linked.ask.submit.prompt, "go");
        }
    }
}
