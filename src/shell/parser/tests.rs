//! The parser's tests: sh's quoting, and the grammar of lists, pipelines and redirections.

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
        ("query a &> out", "redirection"),
        ("query a << EOF", "here-documents"),
        ("query a >&2", "descriptor"),
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
    assert!(is_incomplete("query a |"));
    assert!(is_incomplete("query a &&"));
    assert!(!is_incomplete("query a &"));
    assert_eq!(
        lists("query a |\nquery b")[0].first.commands.len(),
        2,
        "a pipe continues on the next line"
    );
    assert!(parse("query a |").is_err());
    assert!(parse("&& ps").is_err());
    assert!(parse("query a >").is_err());
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

fn lists(line: &str) -> Vec<AndOr> {
    parse_lists(line).unwrap()
}

#[test]
fn pipes_join_commands_into_one_pipeline_with_its_text() {
    let l = lists("query 'list risks' | query translate > out.md &");
    assert_eq!(l.len(), 1);
    assert!(l[0].background && l[0].rest.is_empty());
    let p = &l[0].first;
    assert_eq!(p.commands.len(), 2);
    assert_eq!(p.commands[0].words, ["query", "list risks"]);
    assert_eq!(
        p.commands[1].redirects,
        [Redirect {
            kind: RedirectKind::Output,
            path: "out.md".into()
        }]
    );
    assert!(p.commands.iter().all(|c| c.background));
    assert_eq!(l[0].text, "query 'list risks' | query translate > out.md");
}

#[test]
fn redirections_of_every_kind_stand_anywhere_in_a_command() {
    let l = lists("query < in.txt a >> log 2> err b 2>>e2 >o");
    let c = &l[0].first.commands[0];
    assert_eq!(c.words, ["query", "a", "b"]);
    let kinds: Vec<(RedirectKind, &str)> = c
        .redirects
        .iter()
        .map(|r| (r.kind, r.path.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (RedirectKind::Input, "in.txt"),
            (RedirectKind::Append, "log"),
            (RedirectKind::Errors, "err"),
            (RedirectKind::ErrorsAppend, "e2"),
            (RedirectKind::Output, "o"),
        ]
    );
    assert_eq!(lists("query 'a > b'")[0].first.commands[0].redirects, []);
    assert_eq!(
        lists("query a2")[0].first.commands[0].words,
        ["query", "a2"]
    );
}

#[test]
fn and_or_lists_negation_and_the_last_status_parse_as_in_sh() {
    let l = lists("! kill 99 && ps || jobs; exit $?");
    assert_eq!(l.len(), 2);
    assert!(l[0].first.negated);
    let connectors: Vec<Connector> = l[0].rest.iter().map(|(c, _)| *c).collect();
    assert_eq!(connectors, [Connector::And, Connector::Or]);
    assert_eq!(l[0].text, "! kill 99 && ps || jobs");
    let word = &l[1].first.commands[0].words[1];
    assert_eq!(expand_status(word, 141), "141");
    assert_eq!(
        lists("query 'a!' \"b $?\" wow !")[0].first.commands[0].words,
        ["query", "a!", "b $?", "wow", "!"]
    );
}
