//! Queries joined by `|` or redirected: each becomes a process, created at once. The first reads
//! the `< FILE` text or the shell's standard input; every later one reads the one before it (the
//! kernel holds it blocked, STAT `S`, until that output is complete); all are one process group and
//! one job, which the last process stands for. In the foreground the last one's output streams to
//! the terminal or to the `>` file; the pipeline's status is the last one's, or with
//! `set -o pipefail` the last non-zero one's.

use super::files::{self, StageFiles};
use crate::proto::{
    ExitStatus, Pid, Request, Response, Signal, SignalGroupRequest, SubmitAskRequest,
    SubmitLinkedRequest, WaitRequest,
};
use crate::shell::builtins::query::{self, QueryArgs};
use crate::shell::client::{Client, ClientError};
use crate::shell::foreground::{self, STOPPED_STATUS, Sink};
use crate::shell::jobs::JobState;
use crate::shell::parser::Command;
use crate::shell::session::Shell;

/// Runs `commands` (one pipeline) as processes; returns its status.
pub async fn run(sh: &mut Shell, commands: &[Command], text: &str) -> i32 {
    let background = commands[0].background;
    let mut queries = Vec::with_capacity(commands.len());
    for command in commands {
        let name = command.words[0].as_str();
        if name != "query" {
            sh.complain(name, "only queries can be piped or redirected");
            return 2;
        }
        match query::parse_args(&command.words[1..]) {
            Ok(q) => queries.push(q),
            Err(message) => return crate::shell::builtins::usage_error(sh, &query::HELP, message),
        }
    }
    let mut files = match files::open(commands) {
        Ok(files) => files,
        Err(message) => {
            sh.complain(text, message);
            return 1;
        }
    };
    if background && files.out.is_some() {
        sh.complain(
            text,
            "a background query cannot write to a file (llmsh writes it, and may exit first); \
             run it in the foreground, or read its output later with `cat`",
        );
        return 2;
    }
    if files.input.is_none() && sh.pipes.stdin_feeds_queries {
        sh.pipes.stdin_feeds_queries = false;
        match files::read_stdin() {
            Ok(input) => files.input = Some(input).filter(|i| !i.is_empty()),
            Err(message) => {
                sh.complain("query", message);
                return 1;
            }
        }
    }
    let (pids, client) = match submit_all(sh, queries, files.input.take(), background).await {
        Ok(created) => created,
        Err(status) => return status,
    };
    let last = *pids.last().unwrap_or(&Pid(0));
    if background {
        let id = sh.jobs().add_pipeline(&pids, text, JobState::Running);
        println!("[{id}] {last}");
        sh.watch_job(last);
        return 0;
    }
    let job = (pids.len() > 1).then(|| sh.jobs().add_pipeline(&pids, text, JobState::Running));
    let Some(client) = client else {
        return 1;
    };
    foreground(sh, client, &pids, text, job, files).await
}

/// Submits every query; the pids in order and the last one's connection, streaming its output in
/// the foreground. A failure kills what was already created and is the status to return.
async fn submit_all(
    sh: &mut Shell,
    queries: Vec<QueryArgs>,
    mut input: Option<String>,
    background: bool,
) -> Result<(Vec<Pid>, Option<Client>), i32> {
    let count = queries.len();
    let mut pids: Vec<Pid> = Vec::with_capacity(count);
    for (i, q) in queries.into_iter().enumerate() {
        let mut submit = q.submit;
        submit.attach = i + 1 == count && !background;
        let syscalls = q.syscalls;
        let linked = SubmitLinkedRequest {
            ask: SubmitAskRequest {
                submit,
                model: q.model,
                continue_from: q.continue_from,
            },
            input_from: pids.last().copied(),
            input: input.take(),
            pgid: pids.first().copied(),
            deadline: q.deadline,
        };
        let request = if syscalls {
            query::syscalls_request(q.must_call, linked)
        } else {
            Request::SubmitLinked(linked)
        };
        match submit_one(sh, request).await {
            Ok((pid, client)) => {
                pids.push(pid);
                if i + 1 == count {
                    return Ok((pids, Some(client)));
                }
            }
            Err(e) => {
                sh.complain("query", e);
                if let Some(&pgid) = pids.first() {
                    let kill = SignalGroupRequest {
                        pgid,
                        signal: Signal::Kill,
                    };
                    let _ = sh.call(Request::SignalGroup(kill)).await;
                }
                return Err(1);
            }
        }
    }
    Ok((pids, None))
}

async fn submit_one(sh: &Shell, request: Request) -> Result<(Pid, Client), ClientError> {
    let mut client = sh.client().await?;
    match client.call(request).await? {
        Response::Submitted(s) => Ok((s.pid, client)),
        other => Err(ClientError::unexpected(&other)),
    }
}

/// Follows the last process to its end, then collects the others; the pipeline's status.
async fn foreground(
    sh: &mut Shell,
    client: Client,
    pids: &[Pid],
    text: &str,
    job: Option<u32>,
    mut files: StageFiles,
) -> i32 {
    let (last, earlier) = pids.split_last().unwrap_or((&Pid(0), &[]));
    let sink = Sink {
        out: files.out.take(),
        errors: files.errors.last_mut().and_then(Option::take),
    };
    let last_code = foreground::attach_to(sh, client, *last, text, job, sink).await;
    if last_code == STOPPED_STATUS {
        return last_code;
    }
    let mut codes = Vec::with_capacity(pids.len());
    for (i, pid) in earlier.iter().enumerate() {
        codes.push(collect(sh, *pid, files.errors.get_mut(i).and_then(Option::as_mut)).await);
    }
    codes.push(last_code);
    status_of(&codes, sh.pipes.pipefail)
}

/// After the last process of a pipeline ended in the foreground (`fg`) with `last_code`: collects
/// the earlier ones; the pipeline's status.
pub async fn collect_earlier(sh: &Shell, pids: &[Pid], last_code: i32) -> i32 {
    let Some((_, earlier)) = pids.split_last() else {
        return last_code;
    };
    let mut codes = Vec::with_capacity(pids.len());
    for pid in earlier {
        codes.push(collect(sh, *pid, None).await);
    }
    codes.push(last_code);
    status_of(&codes, sh.pipes.pipefail)
}

/// Reaps an earlier process of the pipeline (it has ended: its reader ran or failed); its code.
/// A failure's reason is reported as the foreground process's is; a broken pipe says nothing.
async fn collect(sh: &Shell, pid: Pid, errors: Option<&mut std::fs::File>) -> i32 {
    match sh.call(Request::Wait(WaitRequest { pid })).await {
        Ok(Response::Exited(exited)) => {
            if let ExitStatus::Failed { reason } = &exited.status {
                foreground::report_failure(pid, reason, errors);
            }
            exited.status.code()
        }
        Ok(other) => sh.unexpected("query", &other),
        Err(e) => {
            sh.complain("query", e);
            1
        }
    }
}

/// A pipeline's status from its processes' codes in order: the last one's, or with `pipefail`
/// the last non-zero one's (0 when all succeeded), as bash does.
pub fn status_of(codes: &[i32], pipefail: bool) -> i32 {
    if pipefail {
        return codes.iter().rev().copied().find(|c| *c != 0).unwrap_or(0);
    }
    codes.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::status_of;

    #[test]
    fn a_pipelines_status_is_the_last_ones_or_with_pipefail_the_last_failures() {
        for (codes, pipefail, want) in [
            (&[141, 0][..], false, 0),
            (&[141, 0][..], true, 141),
            (&[1, 141, 0][..], true, 141),
            (&[0, 0][..], true, 0),
            (&[0, 1][..], false, 1),
        ] {
            assert_eq!(status_of(codes, pipefail), want, "{codes:?} {pipefail}");
        }
    }
}
