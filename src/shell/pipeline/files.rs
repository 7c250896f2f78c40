//! The files of a pipeline's redirections, opened by llmsh as the user before any process is
//! created, so a missing input or an unwritable output fails the pipeline with nothing started:
//! `< FILE` feeds the first query, `>`/`>>` take the last one's output, `2>`/`2>>` any one's failure.

use crate::shell::parser::{Command, RedirectKind};
use std::fs::{File, OpenOptions};

/// What a pipeline's redirections opened.
#[derive(Default)]
pub struct StageFiles {
    /// `< FILE` of the first query: the file's text.
    pub input: Option<String>,
    /// `> FILE` or `>> FILE` of the last query.
    pub out: Option<File>,
    /// `2> FILE` of each query, in order.
    pub errors: Vec<Option<File>>,
}

/// Opens every redirection of `commands` in the order typed (a later one of a kind wins, as in
/// sh); the error is `FILE: reason` or why the redirection cannot stand where it is.
pub fn open(commands: &[Command]) -> Result<StageFiles, String> {
    let mut files = StageFiles::default();
    let last = commands.len() - 1;
    for (i, command) in commands.iter().enumerate() {
        let mut errors = None;
        for r in &command.redirects {
            let path = r.path.as_str();
            let fail = |e: std::io::Error| format!("{path}: {}", io_reason(&e));
            match r.kind {
                RedirectKind::Input if i != 0 => {
                    return Err(format!(
                        "`< {path}`: only the first query of a pipeline reads a file; the others \
                         read the output before them"
                    ));
                }
                RedirectKind::Output | RedirectKind::Append if i != last => {
                    return Err(format!(
                        "`{} {path}`: only the last query of a pipeline writes to a file; the \
                         others write to the next",
                        r.kind.symbol()
                    ));
                }
                RedirectKind::Input => files.input = Some(read_text(path)?),
                RedirectKind::Output | RedirectKind::Errors => {
                    let file = File::create(path).map_err(fail)?;
                    if r.kind == RedirectKind::Output {
                        files.out = Some(file);
                    } else {
                        errors = Some(file);
                    }
                }
                RedirectKind::Append | RedirectKind::ErrorsAppend => {
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(fail)?;
                    if r.kind == RedirectKind::Append {
                        files.out = Some(file);
                    } else {
                        errors = Some(file);
                    }
                }
            }
        }
        files.errors.push(errors);
    }
    Ok(files)
}

/// A file's text; a prompt is text, so bytes that are not UTF-8 are refused.
fn read_text(path: &str) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {}", io_reason(&e)))?;
    String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 text"))
}

/// The shell's own standard input, read to its end (once: the first query that reads it takes it).
pub fn read_stdin() -> Result<String, String> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
        .map_err(|e| format!("standard input: {}", io_reason(&e)))?;
    String::from_utf8(bytes).map_err(|_| "standard input: not UTF-8 text".to_string())
}

/// An I/O error in the words of sh (`No such file or directory`), without Rust's `(os error 2)`.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::parser::parse_lists;

    fn commands(line: &str) -> Vec<Command> {
        parse_lists(line).unwrap().remove(0).first.commands
    }

    #[test]
    fn files_are_read_and_created_where_the_redirections_stand() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "notes").unwrap();
        let out = dir.path().join("out.md");
        let line = format!(
            "query a < {} | query b > {}",
            input.display(),
            out.display()
        );
        let files = open(&commands(&line)).unwrap();
        assert_eq!(files.input.as_deref(), Some("notes"));
        assert!(files.out.is_some() && out.exists());
        assert_eq!(files.errors.len(), 2);
    }

    #[test]
    fn misplaced_or_missing_files_are_refused_with_the_reason() {
        let cases = [
            ("query a | query b < x", "only the first query"),
            ("query a > x | query b", "only the last query"),
            ("query a < /nonexistent/in", "No such file or directory"),
            (
                "query a > /nonexistent/dir/out",
                "No such file or directory",
            ),
        ];
        for (line, want) in cases {
            let err = open(&commands(line)).err().unwrap_or_default();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
