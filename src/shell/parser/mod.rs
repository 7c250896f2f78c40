//! The command-line parser: words with sh quoting (`'...'`, `"..."`, backslash escapes), and the
//! sh grammar llmsh runs: `;` and `&` between lists, `&&` and `||` between pipelines, `!` before
//! one, `|` between commands, and the redirections `< FILE`, `> FILE`, `>> FILE`, `2> FILE`
//! (`2>> FILE`). `#` starts a comment. The lexer here turns a line into [`Token`]s; [`syntax`] builds
//! the lists. What a POSIX shell would do that llmsh does not (subshells, here-documents, `&>`,
//! variables, substitutions) is rejected with a message naming it, never passed on as a literal
//! word or dropped.
//!
//! The shell expands only `$?` (the last status, where it stands unquoted, as in
//! `exit $?`), so any other `$` is text wherever sh would not expand it, and inside double quotes
//! wherever it names a variable (`"How much is $5?"` is a prompt, not a parameter): a prompt is
//! prose, and prose is full of prices. Only what would run something or needs braces, `$(`, `${`
//! and backquotes, is still refused inside double quotes; single quotes keep everything.

mod syntax;
#[cfg(test)]
mod tests;

pub use syntax::{AndOr, Command, Connector, Pipeline, Redirect, RedirectKind, parse, parse_lists};

/// Stands in a word for an unquoted `$?`, replaced by the last status when the command runs
/// ([`expand_status`]). A private-use character: no prompt means it.
pub const LAST_STATUS: char = '\u{E000}';

/// Replaces every unquoted `$?` of `word` by `status`.
pub fn expand_status(word: &str, status: i32) -> String {
    word.replace(LAST_STATUS, &status.to_string())
}

/// Why a line cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("syntax error: {0}")]
pub struct ParseError(pub String);

fn unsupported(what: &str, name: &str) -> ParseError {
    ParseError(format!(
        "`{what}` ({name}) is not supported; quote it to use it as text"
    ))
}

/// A `$(`, `${` or backquote, which double quotes do not make text: only single quotes or a
/// backslash do. `quoted` when it is already inside double quotes.
fn unsupported_substitution(what: &str, name: &str, quoted: bool) -> ParseError {
    let even = if quoted {
        ", even inside double quotes"
    } else {
        ""
    };
    ParseError(format!(
        "`{what}` ({name}) is not supported{even}; \
         put it in single quotes or write `\\{what}` to use it as text"
    ))
}

/// An operator of the sh grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Semi,
    Amp,
    AndIf,
    OrIf,
    Pipe,
    /// `!` as a word of its own.
    Bang,
    Redirect(RedirectKind),
}

/// A word or an operator, with where it stands in the line (bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Word {
        text: String,
        start: usize,
        end: usize,
    },
    Op {
        op: Op,
        start: usize,
        end: usize,
    },
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: &'a str,
}

/// Splits a line into words and operators.
pub fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        chars: line.char_indices().peekable(),
        line,
    };
    let mut tokens = Vec::new();
    while let Some(&(i, c)) = lexer.chars.peek() {
        let op = match c {
            c if c.is_whitespace() => {
                lexer.chars.next();
                continue;
            }
            '#' => break,
            ';' => lexer.one(Op::Semi),
            '&' => {
                lexer.chars.next();
                if lexer.next_is('&') {
                    Op::AndIf
                } else if lexer.next_is('>') {
                    return Err(unsupported("&>", "redirection of both streams"));
                } else {
                    Op::Amp
                }
            }
            '|' => {
                lexer.chars.next();
                if lexer.next_is('|') {
                    Op::OrIf
                } else {
                    Op::Pipe
                }
            }
            '<' => {
                lexer.chars.next();
                if lexer.next_is('<') {
                    return Err(unsupported("<<", "here-documents"));
                }
                Op::Redirect(RedirectKind::Input)
            }
            '>' => {
                lexer.chars.next();
                lexer.output_redirect(false)?
            }
            '2' if lexer.line[i..].starts_with("2>") => {
                lexer.chars.next();
                lexer.chars.next();
                lexer.output_redirect(true)?
            }
            '!' if lexer.line[i + 1..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace) =>
            {
                lexer.one(Op::Bang)
            }
            '(' | ')' => return Err(unsupported(&c.to_string(), "subshells")),
            '`' => return Err(unsupported_substitution("`", "command substitution", false)),
            _ => {
                let text = lexer.word()?;
                let end = lexer.position();
                tokens.push(Token::Word {
                    text,
                    start: i,
                    end,
                });
                continue;
            }
        };
        tokens.push(Token::Op {
            op,
            start: i,
            end: lexer.position(),
        });
    }
    Ok(tokens)
}

impl Lexer<'_> {
    /// Byte position of the next character.
    fn position(&mut self) -> usize {
        self.chars.peek().map_or(self.line.len(), |&(j, _)| j)
    }

    /// Consumes one character that is the operator `op`.
    fn one(&mut self, op: Op) -> Op {
        self.chars.next();
        op
    }

    /// Consumes the next character if it is `c`.
    fn next_is(&mut self, c: char) -> bool {
        self.chars.next_if(|&(_, n)| n == c).is_some()
    }

    /// After `>` (or `2>`): `>>` appends; `>&` and `>|` are refused.
    fn output_redirect(&mut self, errors: bool) -> Result<Op, ParseError> {
        if self.next_is('&') {
            return Err(unsupported(">&", "descriptor duplication"));
        }
        if self.next_is('|') {
            return Err(unsupported(">|", "clobbering redirection"));
        }
        let append = self.next_is('>');
        Ok(Op::Redirect(match (errors, append) {
            (false, false) => RedirectKind::Output,
            (false, true) => RedirectKind::Append,
            (true, false) => RedirectKind::Errors,
            (true, true) => RedirectKind::ErrorsAppend,
        }))
    }

    /// Reads one word up to an unquoted blank or operator.
    fn word(&mut self) -> Result<String, ParseError> {
        let mut word = String::new();
        while let Some(&(_, c)) = self.chars.peek() {
            match c {
                c if c.is_whitespace() => break,
                ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '`' => return Err(unsupported_substitution("`", "command substitution", false)),
                '\'' => {
                    self.chars.next();
                    self.until_quote('\'', &mut word, false)?;
                }
                '"' => {
                    self.chars.next();
                    self.until_quote('"', &mut word, true)?;
                }
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        Some((_, '\n')) => {}
                        Some((_, c)) => word.push(c),
                        None => {
                            return Err(ParseError(
                                "`\\` at the end of the line escapes nothing".into(),
                            ));
                        }
                    }
                }
                '$' => {
                    self.chars.next();
                    self.dollar(&mut word, false)?;
                }
                c => {
                    self.chars.next();
                    word.push(c);
                }
            }
        }
        Ok(word)
    }

    /// A `$` is literal unless it would start an expansion in sh; inside double quotes (`quoted`)
    /// only a substitution or a braced name is refused, a parameter name is text.
    fn dollar(&mut self, word: &mut String, quoted: bool) -> Result<(), ParseError> {
        match self.chars.peek() {
            Some(&(_, c @ ('(' | '{'))) => Err(unsupported_substitution(
                &format!("${c}"),
                "variables and substitutions",
                quoted,
            )),
            Some(&(_, '?')) if !quoted => {
                self.chars.next();
                word.push(LAST_STATUS);
                Ok(())
            }
            Some(&(_, c)) if !quoted && (c.is_ascii_alphanumeric() || "_{(@*#!$-".contains(c)) => {
                Err(unsupported(&format!("${c}"), "variables and substitutions"))
            }
            _ => {
                word.push('$');
                Ok(())
            }
        }
    }

    fn until_quote(
        &mut self,
        quote: char,
        word: &mut String,
        double: bool,
    ) -> Result<(), ParseError> {
        while let Some((_, c)) = self.chars.next() {
            match c {
                c if c == quote => return Ok(()),
                '\\' if double => match self.chars.peek() {
                    Some(&(_, n)) if "\"\\$`\n".contains(n) => {
                        self.chars.next();
                        if n != '\n' {
                            word.push(n);
                        }
                    }
                    _ => word.push('\\'),
                },
                '$' if double => self.dollar(word, true)?,
                '`' if double => {
                    return Err(unsupported_substitution("`", "command substitution", true));
                }
                c => word.push(c),
            }
        }
        Err(ParseError(format!(
            "unexpected end of line: missing closing `{quote}`"
        )))
    }
}

/// Whether a line is incomplete (an open quote, a trailing backslash, or a trailing `|`, `&&` or
/// `||` waiting for its command), for multi-line input, as sh continues it on the next line.
pub fn is_incomplete(line: &str) -> bool {
    match tokenize(line) {
        Err(ParseError(m)) => m.starts_with("unexpected end") || m.contains("escapes nothing"),
        Ok(tokens) => matches!(
            tokens.last(),
            Some(Token::Op {
                op: Op::Pipe | Op::AndIf | Op::OrIf,
                ..
            })
        ),
    }
}
