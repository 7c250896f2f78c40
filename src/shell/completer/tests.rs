//! Table-driven tests of what Tab offers.

use super::*;

#[derive(Default)]
struct Fixture {
    kernel_asked: usize,
}

impl Facts for Fixture {
    fn jobs(&mut self) -> Vec<(String, String)> {
        vec![
            ("%1".into(), "query one &".into()),
            ("%2".into(), "query two".into()),
        ]
    }

    fn processes(&mut self) -> Vec<(String, String)> {
        self.kernel_asked += 1;
        vec![
            ("12".into(), "R one".into()),
            ("13".into(), "T two".into()),
            ("140".into(), "Q three".into()),
        ]
    }

    fn policies(&mut self) -> Vec<String> {
        self.kernel_asked += 1;
        vec!["priority".into(), "fifo".into()]
    }
}

fn values(line: &str) -> (Vec<String>, usize) {
    let mut facts = Fixture::default();
    let (_, found) = candidates(line, line.len(), &mut facts);
    (
        found.into_iter().map(|(v, _)| v).collect(),
        facts.kernel_asked,
    )
}

#[test]
fn tab_offers_what_the_word_under_the_cursor_can_be() {
    let table: &[(&str, &[&str])] = &[
        (
            "",
            &[
                "query",
                "ps",
                "jobs",
                "fg",
                "bg",
                "kill",
                "wait",
                "cat",
                "nice",
                "renice",
                "interrupt",
                "interrupts",
                "sched",
                "set",
                "free",
                "quota",
                "clear",
                "top",
                "help",
                "exit",
            ],
        ),
        ("he", &["help"]),
        ("ps; j", &["jobs"]),
        ("query x & k", &["kill"]),
        ("zzz", &[]),
        ("ps -", &["-a", "-l"]),
        ("ps ", &[]),
        ("jobs -", &["-l"]),
        ("query --m", &["--max-tokens", "--model", "--must-call"]),
        (
            "query --type ",
            &[
                "housekeeping",
                "llm_initiated",
                "user_subprocess",
                "user",
                "system",
            ],
        ),
        ("query -t US", &["user_subprocess", "user"]),
        ("query --system ", &[]),
        (
            "query hello -",
            &[
                "--system",
                "--type",
                "--max-tokens",
                "--nice",
                "--model",
                "--continue",
                "--deadline",
                "--deadline-soft",
                "--syscalls",
                "--must-call",
                "--",
            ],
        ),
        ("query --sy", &["--system", "--syscalls"]),
        ("query --deadline ", &[]),
        ("query -- -", &[]),
        ("nice ", &["query"]),
        ("nice -", &["-n"]),
        ("nice -n 5 q", &["query"]),
        ("nice -n 5 query --n", &["--nice"]),
        ("fg ", &["%1", "%2"]),
        ("bg %2", &["%2"]),
        ("kill ", &["%1", "%2", "12", "13", "140"]),
        ("kill 1", &["12", "13", "140"]),
        ("kill 14", &["140"]),
        ("kill %", &["%1", "%2"]),
        (
            "kill -s ",
            &["HUP", "INT", "KILL", "TERM", "CONT", "STOP", "TSTP"],
        ),
        ("kill -s st", &["STOP"]),
        ("kill -K", &["-KILL"]),
        ("kill -9 %", &["%1", "%2"]),
        ("wait 13", &["13"]),
        ("cat ", &["%1", "%2", "12", "13", "140"]),
        ("renice ", &[]),
        ("renice 5 %", &["%1", "%2"]),
        ("renice -n 5 1", &["12", "13", "140"]),
        ("interrupt ", &["system", "timer"]),
        ("interrupt t", &["timer"]),
        ("interrupt system ", &[]),
        ("sched ", &["priority", "fifo"]),
        ("sched fi", &["fifo"]),
        ("help k", &["kill"]),
        ("exit ", &[]),
        ("clear -", &["-x"]),
        ("cle", &["clear"]),
        ("cat '1", &[]),
    ];
    for (line, want) in table {
        let (got, _) = values(line);
        assert_eq!(got, want.to_vec(), "{line:?}");
    }
}

#[test]
fn only_pids_and_policies_ask_the_kernel() {
    for (line, asks) in [
        ("", 0),
        ("query --t", 0),
        ("kill -", 0),
        ("fg %", 0),
        ("kill %", 0),
        ("kill ", 1),
        ("wait 1", 1),
        ("sched ", 1),
    ] {
        assert_eq!(values(line).1, asks, "{line:?}");
    }
}

#[test]
fn the_replaced_span_is_the_word_under_the_cursor() {
    let mut facts = Fixture::default();
    assert_eq!(candidates("kill %1 14", 10, &mut facts).0, 8);
    assert_eq!(candidates("kill %1 ", 8, &mut facts).0, 8);
    let (start, found) = candidates("he ps", 2, &mut facts);
    assert_eq!((start, found.len()), (0, 1));
}

#[test]
fn job_and_pid_suggestions_carry_a_description() {
    let mut facts = Fixture::default();
    let (_, found) = candidates("fg %1", 5, &mut facts);
    assert_eq!(
        found,
        vec![("%1".to_string(), Some("query one &".to_string()))]
    );
}
