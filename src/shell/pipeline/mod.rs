//! How llmsh runs a line: lists one after another, `&&` and `||` by the status of the pipeline
//! before (`$?` is that status), `!` inverting a status. A pipeline of one command without
//! redirections is a builtin's business ([`crate::shell::builtins::dispatch`]), with its output and
//! errors redirected by [`streams`]; queries joined by `|` or redirected are submitted together by
//! [`stages`], as one job and one process group.

mod files;
mod stages;
mod streams;

pub use stages::{collect_earlier, status_of};

use super::builtins;
use super::parser::{self, AndOr, Command, Connector, Pipeline};
use super::session::Shell;

/// How pipelines run.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipeOptions {
    /// `set -o pipefail`: a pipeline's status is its last failing process's, not its last one's.
    pub pipefail: bool,
    /// The shell's standard input is not a terminal and not its script: the first query of the
    /// first pipeline that runs reads it (`git diff | llmsh -c 'query "review this diff"'`).
    pub stdin_feeds_queries: bool,
}

/// Runs one line; returns its status (that of its last pipeline run).
pub async fn run_line(sh: &mut Shell, line: &str) -> i32 {
    let lists = match parser::parse_lists(line) {
        Ok(lists) => lists,
        Err(e) => {
            eprintln!("llmsh: {e}");
            sh.last_status = 2;
            return 2;
        }
    };
    for list in lists {
        sh.last_status = run_and_or(sh, &list).await;
        if sh.exit_requested.is_some() {
            break;
        }
    }
    sh.last_status
}

async fn run_and_or(sh: &mut Shell, list: &AndOr) -> i32 {
    if list.background && !list.rest.is_empty() {
        sh.complain(
            &list.text,
            "only a pipeline can run in the background, not a list joined by `&&` or `||`",
        );
        return 2;
    }
    let mut status = run_pipeline(sh, &list.first).await;
    for (connector, pipeline) in &list.rest {
        sh.last_status = status;
        if sh.exit_requested.is_some() {
            break;
        }
        let runs = match connector {
            Connector::And => status == 0,
            Connector::Or => status != 0,
        };
        if runs {
            status = run_pipeline(sh, pipeline).await;
        }
    }
    status
}

async fn run_pipeline(sh: &mut Shell, pipeline: &Pipeline) -> i32 {
    let commands: Vec<Command> = pipeline
        .commands
        .iter()
        .map(|c| Command {
            words: c
                .words
                .iter()
                .map(|w| parser::expand_status(w, sh.last_status))
                .collect(),
            ..c.clone()
        })
        .collect();
    let first = &commands[0];
    let reads_stdin = sh.pipes.stdin_feeds_queries && first.words[0] == "query";
    let status = if commands.len() == 1 && first.redirects.is_empty() && !reads_stdin {
        builtins::dispatch(sh, first).await
    } else if commands.len() == 1 && first.words[0] != "query" {
        match streams::redirect(first) {
            Ok(guard) => {
                let status = builtins::dispatch(sh, first).await;
                drop(guard);
                status
            }
            Err(message) => {
                sh.complain(&first.words[0], message);
                1
            }
        }
    } else {
        stages::run(sh, &commands, &pipeline.text).await
    };
    if pipeline.negated {
        i32::from(status == 0)
    } else {
        status
    }
}
