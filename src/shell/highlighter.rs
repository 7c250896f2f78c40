//! Line-editor helpers that look at the text being typed: the highlighter colours each command word
//! (green for a builtin, red for anything else, as fish does) and the validator keeps the line open
//! while a quote is open or it ends in a backslash, `|`, `&&` or `||`, so Enter continues on the
//! next line as in sh.

use super::builtins;
use super::parser;
use super::tokens;
use reedline::{Color, Highlighter, StyledText, ValidationResult, Validator};

/// Whether `word` names a builtin.
pub fn is_builtin(word: &str) -> bool {
    word == "logout" || builtins::ALL.iter().any(|h| h.name == word)
}

/// Colours command words.
#[derive(Default)]
pub struct CommandHighlighter;

/// What a stretch of the line is, for colouring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stretch {
    /// A builtin's name in command position.
    Builtin,
    /// A command word that names no builtin.
    Unknown,
    /// Anything else: arguments, blanks, separators.
    Plain,
}

/// The stretches of `line`, in order; together they are the whole line.
pub fn classify(line: &str) -> Vec<(Stretch, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for command in tokens::commands(line) {
        let Some(word) = command.first() else {
            continue;
        };
        if word.start > at {
            out.push((Stretch::Plain, &line[at..word.start]));
        }
        let text = &line[word.clone()];
        let kind = if is_builtin(text) {
            Stretch::Builtin
        } else {
            Stretch::Unknown
        };
        out.push((kind, text));
        at = word.end;
    }
    if at < line.len() {
        out.push((Stretch::Plain, &line[at..]));
    }
    out
}

impl Highlighter for CommandHighlighter {
    fn highlight(&self, line: &str, _cursor: usize) -> StyledText {
        let mut styled = StyledText::new();
        for (kind, text) in classify(line) {
            let style = match kind {
                Stretch::Builtin => Color::Green.bold(),
                Stretch::Unknown => Color::Red.normal(),
                Stretch::Plain => Default::default(),
            };
            styled.push((style, text.to_string()));
        }
        styled
    }
}

/// Keeps a line with an open quote or a trailing backslash open for more input.
pub struct QuoteValidator;

impl Validator for QuoteValidator {
    fn validate(&self, line: &str) -> ValidationResult {
        if parser::is_incomplete(line) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_are_marked_builtin_or_unknown() {
        use Stretch::{Builtin as B, Plain as P, Unknown as U};
        let table: &[(&str, &[(Stretch, &str)])] = &[
            ("", &[]),
            ("ps -l", &[(B, "ps"), (P, " -l")]),
            ("  bogus x", &[(P, "  "), (U, "bogus"), (P, " x")]),
            (
                "query 'ps; x' & jobs",
                &[(B, "query"), (P, " 'ps; x' & "), (B, "jobs")],
            ),
            ("que", &[(U, "que")]),
            ("logout", &[(B, "logout")]),
        ];
        for (line, want) in table {
            assert_eq!(classify(line), want.to_vec(), "{line:?}");
        }
    }

    #[test]
    fn highlighting_keeps_every_character() {
        let text = CommandHighlighter.highlight("kill %1; nope", 0);
        let joined: String = text.buffer.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(joined, "kill %1; nope");
    }

    #[test]
    fn an_open_quote_or_trailing_backslash_continues_the_line() {
        for (line, incomplete) in [
            ("query 'open", true),
            ("query \"open", true),
            ("query a \\", true),
            ("query 'closed'", false),
            ("ps", false),
            ("ps |", true),
            ("ps &", false),
        ] {
            let got = matches!(QuoteValidator.validate(line), ValidationResult::Incomplete);
            assert_eq!(got, incomplete, "{line:?}");
        }
    }
}
