//! A forgiving split of the line being edited into words and command separators, for highlighting
//! and completion. Unlike the parser it never fails: an open quote simply runs to the end of the
//! line, because the user has not finished typing.

use std::ops::Range;

/// A piece of the line: a word as typed (quotes and all), or a `;`, `&` or `|` between commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Word(Range<usize>),
    Separator(Range<usize>),
}

/// The words of `line` grouped by command, as byte ranges. A `#` comment ends the line.
pub fn commands(line: &str) -> Vec<Vec<Range<usize>>> {
    let mut commands = vec![Vec::new()];
    for token in tokens(line) {
        match token {
            Token::Word(range) => {
                if let Some(command) = commands.last_mut() {
                    command.push(range);
                }
            }
            Token::Separator(_) => commands.push(Vec::new()),
        }
    }
    commands
}

/// The tokens of `line`.
pub fn tokens(line: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => break,
            ';' | '&' | '|' => {
                chars.next();
                out.push(Token::Separator(i..i + 1));
            }
            _ => {
                let mut quote: Option<char> = None;
                let mut end = line.len();
                while let Some(&(j, c)) = chars.peek() {
                    match (quote, c) {
                        (None, c) if c.is_whitespace() || ";&|".contains(c) => {
                            end = j;
                            break;
                        }
                        (None, '\'' | '"') => quote = Some(c),
                        (Some(q), c) if c == q => quote = None,
                        (Some('\''), _) => {}
                        (_, '\\') => {
                            chars.next();
                        }
                        _ => {}
                    }
                    chars.next();
                }
                out.push(Token::Word(i..end));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Vec<&str>> {
        commands(line)
            .into_iter()
            .map(|c| c.into_iter().map(|r| &line[r]).collect())
            .collect()
    }

    #[test]
    fn lines_split_into_commands_and_words_even_when_unfinished() {
        let table: &[(&str, &[&[&str]])] = &[
            ("", &[&[]]),
            ("ps -l", &[&["ps", "-l"]]),
            ("  kill  %1 ", &[&["kill", "%1"]]),
            ("query 'a; b' ; jobs", &[&["query", "'a; b'"], &["jobs"]]),
            ("query a& fg", &[&["query", "a"], &["fg"]]),
            (
                "query \"open quote; still",
                &[&["query", "\"open quote; still"]],
            ),
            ("query a\\ b", &[&["query", "a\\ b"]]),
            ("ps # jobs", &[&["ps"]]),
            ("ps;", &[&["ps"], &[]]),
        ];
        for (line, want) in table {
            let want: Vec<Vec<&str>> = want.iter().map(|c| c.to_vec()).collect();
            assert_eq!(words(line), want, "{line:?}");
        }
    }
}
