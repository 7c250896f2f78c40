//! The sh grammar over [`Token`]s: a line is lists separated by `;` or `&`; a list is pipelines
//! joined by `&&` and `||`; a pipeline is commands joined by `|`, perhaps negated by `!`; a command
//! is words and redirections, in any order.

use super::{Op, ParseError, Token};

/// Where a redirection points a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// `< FILE`: the command's input.
    Input,
    /// `> FILE`: its output, the file truncated first.
    Output,
    /// `>> FILE`: its output, appended.
    Append,
    /// `2> FILE`: its errors (a failure's reason), the file truncated first.
    Errors,
    /// `2>> FILE`: its errors, appended.
    ErrorsAppend,
}

impl RedirectKind {
    /// The operator as typed.
    pub fn symbol(self) -> &'static str {
        match self {
            RedirectKind::Input => "<",
            RedirectKind::Output => ">",
            RedirectKind::Append => ">>",
            RedirectKind::Errors => "2>",
            RedirectKind::ErrorsAppend => "2>>",
        }
    }
}

/// One redirection of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub kind: RedirectKind,
    pub path: String,
}

/// One simple command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
    pub background: bool,
    /// The command as typed (without the `&`), for `jobs` and notices.
    pub text: String,
    /// Its redirections, in the order typed.
    pub redirects: Vec<Redirect>,
}

/// Commands joined by `|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// `!`: its status is inverted.
    pub negated: bool,
    pub commands: Vec<Command>,
    /// The pipeline as typed.
    pub text: String,
}

/// How a pipeline is joined to the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// `&&`: runs if the one before succeeded.
    And,
    /// `||`: runs if the one before failed.
    Or,
}

/// Pipelines joined by `&&` and `||`, run in the background with `&`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
    pub background: bool,
    /// The list as typed (without the `&`).
    pub text: String,
}

/// Parses one line (or a `-c` string) into lists.
pub fn parse_lists(line: &str) -> Result<Vec<AndOr>, ParseError> {
    let tokens = super::tokenize(line)?;
    let mut parser = Parser {
        line,
        tokens: tokens.into_iter().peekable(),
    };
    let mut lists = Vec::new();
    while parser.tokens.peek().is_some() {
        let mut list = parser.and_or()?;
        match parser.tokens.next() {
            None => {}
            Some(Token::Op { op: Op::Semi, .. }) => {}
            Some(Token::Op { op: Op::Amp, .. }) => list.background = true,
            Some(other) => return Err(ParseError(format!("unexpected {}", describe(&other)))),
        }
        if list.background {
            for pipeline in
                std::iter::once(&mut list.first).chain(list.rest.iter_mut().map(|(_, p)| p))
            {
                pipeline
                    .commands
                    .iter_mut()
                    .for_each(|c| c.background = true);
            }
        }
        lists.push(list);
    }
    Ok(lists)
}

/// The simple commands of a line, in order (for callers that see only commands).
pub fn parse(line: &str) -> Result<Vec<Command>, ParseError> {
    Ok(parse_lists(line)?
        .into_iter()
        .flat_map(|l| {
            std::iter::once(l.first)
                .chain(l.rest.into_iter().map(|(_, p)| p))
                .flat_map(|p| p.commands)
        })
        .collect())
}

struct Parser<'a> {
    line: &'a str,
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word { text, .. } => format!("word `{text}`"),
        Token::Op { start, end, .. } => format!("operator at byte {start}..{end}"),
    }
}

fn op_text<'a>(line: &'a str, token: &Token) -> &'a str {
    match token {
        Token::Op { start, end, .. } | Token::Word { start, end, .. } => &line[*start..*end],
    }
}

impl Parser<'_> {
    fn and_or(&mut self) -> Result<AndOr, ParseError> {
        let first = self.pipeline()?;
        let start = first.span.0;
        let mut end = first.span.1;
        let mut rest = Vec::new();
        while let Some(Token::Op {
            op: op @ (Op::AndIf | Op::OrIf),
            ..
        }) = self.tokens.peek()
        {
            let connector = if *op == Op::AndIf {
                Connector::And
            } else {
                Connector::Or
            };
            let token = self.tokens.next();
            if self.tokens.peek().is_none() {
                let what = token.map(|t| op_text(self.line, &t).to_string());
                return Err(ParseError(format!(
                    "`{}` needs a command after it",
                    what.unwrap_or_default()
                )));
            }
            let next = self.pipeline()?;
            end = next.span.1;
            rest.push((connector, next.pipeline));
        }
        Ok(AndOr {
            first: first.pipeline,
            rest,
            background: false,
            text: self.line[start..end].trim().to_string(),
        })
    }

    fn pipeline(&mut self) -> Result<Spanned, ParseError> {
        let mut negated = false;
        let mut start = None;
        if let Some(Token::Op {
            op: Op::Bang,
            start: s,
            ..
        }) = self.tokens.peek()
        {
            start = Some(*s);
            negated = true;
            self.tokens.next();
        }
        let mut commands = Vec::new();
        let mut end;
        loop {
            let (command, s, e) = self.command()?;
            start.get_or_insert(s);
            end = e;
            commands.push(command);
            if !matches!(self.tokens.peek(), Some(Token::Op { op: Op::Pipe, .. })) {
                break;
            }
            self.tokens.next();
            if self.tokens.peek().is_none() {
                return Err(ParseError("`|` needs a command after it".into()));
            }
        }
        let start = start.unwrap_or(0);
        Ok(Spanned {
            pipeline: Pipeline {
                negated,
                commands,
                text: self.line[start..end].trim().to_string(),
            },
            span: (start, end),
        })
    }

    /// One command and where it stands.
    fn command(&mut self) -> Result<(Command, usize, usize), ParseError> {
        let mut words = Vec::new();
        let mut redirects = Vec::new();
        let (mut start, mut end) = (None, 0);
        loop {
            match self.tokens.peek().cloned() {
                Some(Token::Word {
                    text,
                    start: s,
                    end: e,
                }) => {
                    self.tokens.next();
                    start.get_or_insert(s);
                    end = e;
                    words.push(text);
                }
                // `!` inside a command is only a word.
                Some(Token::Op {
                    op: Op::Bang,
                    start: s,
                    end: e,
                }) if start.is_some() => {
                    self.tokens.next();
                    end = e;
                    words.push(self.line[s..e].to_string());
                }
                Some(Token::Op {
                    op: Op::Redirect(kind),
                    start: s,
                    ..
                }) => {
                    self.tokens.next();
                    start.get_or_insert(s);
                    match self.tokens.next() {
                        Some(Token::Word { text, end: e, .. }) => {
                            end = e;
                            redirects.push(super::Redirect { kind, path: text });
                        }
                        _ => {
                            return Err(ParseError(format!(
                                "`{}` needs a file name after it",
                                kind.symbol()
                            )));
                        }
                    }
                }
                other => {
                    let Some(start) = start.filter(|_| !words.is_empty()) else {
                        let what = match &other {
                            Some(t) => format!("`{}`", op_text(self.line, t)),
                            None => "a redirection".into(),
                        };
                        return Err(ParseError(format!("{what} needs a command before it")));
                    };
                    let command = Command {
                        words,
                        background: false,
                        text: self.line[start..end].trim().to_string(),
                        redirects,
                    };
                    return Ok((command, start, end));
                }
            }
        }
    }
}

/// A pipeline and the bytes of the line it spans.
struct Spanned {
    pipeline: Pipeline,
    span: (usize, usize),
}
