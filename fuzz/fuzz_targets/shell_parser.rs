//! The shell's command-line parser on arbitrary text. It must never panic; every command it returns
//! has a word and a text taken from the line; and the words, quoted back with single quotes, parse to
//! the same words (the quoting a user would type reads back exactly).

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkernel::shell::parser::{is_incomplete, parse};

/// `word` in single quotes, each `'` written as `'\''`.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = is_incomplete(&line);
    let Ok(commands) = parse(&line) else {
        return;
    };
    for command in &commands {
        assert!(
            !command.words.is_empty(),
            "a command without words: {command:?}"
        );
        assert!(
            line.contains(&command.text),
            "text not from the line: {command:?}"
        );
        let quoted: Vec<String> = command.words.iter().map(|w| quote(w)).collect();
        let again = parse(&quoted.join(" ")).expect("quoted words parse");
        assert_eq!(again.len(), 1, "{quoted:?}");
        assert_eq!(again[0].words, command.words, "{quoted:?}");
    }
});
