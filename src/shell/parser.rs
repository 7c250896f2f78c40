//! The command-line parser: words with sh quoting (`'...'`, `"..."`, backslash escapes), `;` between
//! commands, `&` to run one in the background, `#` comments. What a POSIX shell would do differently
//! (pipes, redirections, `&&`, variables, substitutions) is rejected with a message naming it, never
//! passed on as a literal word or dropped.
//!
//! The shell expands nothing, so a `$` is text wherever sh would not expand it, and inside double
//! quotes wherever it names a variable (`"How much is $5?"` is a prompt, not a parameter): a prompt
//! is prose, and prose is full of prices. Only what would run something or needs braces, `$(`,
//! `${` and backquotes, is still refused inside double quotes; single quotes keep everything.

/// One simple command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub words: Vec<String>,
    pub background: bool,
    /// The command as typed (without the `&`), for `jobs` and notices.
    pub text: String,
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

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

/// Parses one line (or a `-c` string) into commands.
pub fn parse(line: &str) -> Result<Vec<Command>, ParseError> {
    let mut lexer = Lexer {
        chars: line.char_indices().peekable(),
    };
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut finish =
        |words: &mut Vec<String>, start: &mut Option<usize>, end: usize, background: bool| {
            if let Some(s) = start.take() {
                commands.push(Command {
                    words: std::mem::take(words),
                    background,
                    text: line[s..end].trim().to_string(),
                });
                Ok(())
            } else if background {
                Err(ParseError("`&` needs a command before it".into()))
            } else {
                Ok(())
            }
        };
    while let Some(&(i, c)) = lexer.chars.peek() {
        match c {
            c if c.is_whitespace() => {
                lexer.chars.next();
            }
            '#' => break,
            ';' => {
                lexer.chars.next();
                if start.is_none() {
                    return Err(ParseError("`;` needs a command before it".into()));
                }
                finish(&mut words, &mut start, end, false)?;
            }
            '&' => {
                lexer.chars.next();
                if lexer.chars.peek().is_some_and(|&(_, c)| c == '&') {
                    return Err(unsupported("&&", "and-lists"));
                }
                if lexer.chars.peek().is_some_and(|&(_, c)| c == '>') {
                    return Err(unsupported("&>", "redirection"));
                }
                finish(&mut words, &mut start, end, true)?;
            }
            '|' => {
                lexer.chars.next();
                let or = lexer.chars.peek().is_some_and(|&(_, c)| c == '|');
                return Err(if or {
                    unsupported("||", "or-lists")
                } else {
                    unsupported("|", "pipelines")
                });
            }
            '>' | '<' => return Err(unsupported(&c.to_string(), "redirection")),
            '(' | ')' => return Err(unsupported(&c.to_string(), "subshells")),
            '`' => return Err(unsupported_substitution("`", "command substitution", false)),
            _ => {
                start.get_or_insert(i);
                words.push(lexer.word()?);
                end = lexer.chars.peek().map_or(line.len(), |&(j, _)| j);
            }
        }
    }
    finish(&mut words, &mut start, end, false)?;
    Ok(commands)
}

impl Lexer<'_> {
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
            Some(&(_, c)) if !quoted && (c.is_ascii_alphanumeric() || "_{(@*#?!$-".contains(c)) => {
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

/// Whether a line is incomplete (an open quote or a trailing backslash), for multi-line input.
pub fn is_incomplete(line: &str) -> bool {
    matches!(parse(line), Err(ParseError(m)) if m.starts_with("unexpected end") || m.contains("escapes nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<String>> {
        parse(line).unwrap().into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn words_quotes_and_escapes_follow_sh() {
        let table: &[(&str, &[&[&str]])] = &[
            ("ps", &[&["ps"]]),
            ("  ps   -l  ", &[&["ps", "-l"]]),
            ("query \"hello world\"", &[&["query", "hello world"]]),
            ("query 'it''s'", &[&["query", "its"]]),
            ("query 'a \"b\" c'", &[&["query", "a \"b\" c"]]),
            (
                "query \"say \\\"hi\\\" \\\\ \\n\"",
                &[&["query", "say \"hi\" \\ \\n"]],
            ),
            ("query a\\ b", &[&["query", "a b"]]),
            (
                "query user=\"x y\" system='z'",
                &[&["query", "user=x y", "system=z"]],
            ),
            ("query \"costs $5\"", &[&["query", "costs $5"]]),
            (
                "query \"How much is $5 in euros?\"",
                &[&["query", "How much is $5 in euros?"]],
            ),
            ("query \"$HOME $? $$ $\"", &[&["query", "$HOME $? $$ $"]]),
            ("query \"a \\$(b)\"", &[&["query", "a $(b)"]]),
            (
                "query '$(date) ${x} `y`'",
                &[&["query", "$(date) ${x} `y`"]],
            ),
            ("query ''", &[&["query", ""]]),
            ("ps; jobs", &[&["ps"], &["jobs"]]),
            ("ps ;jobs;", &[&["ps"], &["jobs"]]),
            ("ps # a comment", &[&["ps"]]),
            ("# only a comment", &[]),
            ("query 'a # b'", &[&["query", "a # b"]]),
            ("query a#b", &[&["query", "a#b"]]),
            ("", &[]),
        ];
        for (line, want) in table {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|c| c.iter().map(|w| w.to_string()).collect())
                .collect();
            assert_eq!(words(line), want, "{line}");
        }
    }

    #[test]
    fn ampersand_runs_in_background_and_keeps_the_text() {
        let cmds = parse("query \"a b\" & ps").unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].background && !cmds[1].background);
        assert_eq!(cmds[0].text, "query \"a b\"");
        assert_eq!(cmds[1].text, "ps");
    }

    #[test]
    fn unsupported_syntax_is_rejected_with_its_name() {
        for (line, name) in [
            ("query a | cat", "pipelines"),
            ("query a > out", "redirection"),
            ("query a && ps", "and-lists"),
            ("query a || ps", "or-lists"),
            ("query $HOME", "variables"),
            ("query \"$(date)\"", "variables"),
            ("query `date`", "command substitution"),
            ("(ps)", "subshells"),
        ] {
            let err = parse(line).unwrap_err().to_string();
            assert!(err.contains(name), "{line}: {err}");
        }
    }

    #[test]
    fn unterminated_quotes_and_stray_operators_are_errors() {
        assert!(
            parse("query \"open")
                .unwrap_err()
                .0
                .contains("missing closing `\"`")
        );
        assert!(
            parse("query 'open")
                .unwrap_err()
                .0
                .contains("missing closing `'`")
        );
        assert!(parse("; ps").is_err());
        assert!(parse("&").is_err());
        assert!(is_incomplete("query \"open"));
        assert!(is_incomplete("query a\\"));
        assert!(!is_incomplete("query a |"));
    }

    #[test]
    fn refusals_say_how_to_write_the_text() {
        for (line, advice) in [
            ("query $5", "quote it to use it as text"),
            (
                "query \"$(date)\"",
                "even inside double quotes; put it in single quotes",
            ),
            ("query \"${x}\"", "even inside double quotes"),
            ("query \"`date`\"", "even inside double quotes"),
            (
                "query $(date)",
                "not supported; put it in single quotes or write `\\$(`",
            ),
        ] {
            let err = parse(line).unwrap_err().to_string();
            assert!(err.contains(advice), "{line}: {err}");
        }
    }

    #[test]
    fn literal_dollar_without_a_name_is_kept() {
        assert_eq!(
            words("query 'costs $5' a$"),
            vec![vec!["query", "costs $5", "a$"]]
        );
    }
}
