//! Man pages and shell completions are generated from the argument definitions (clap) plus the
//! hand-written sections in `man/src/`; these tests fail when the committed files drift from the code.
//! Regenerate with `scripts/gen-docs`.

use clap::CommandFactory;
use llmkernel::kernel::cli::KernelArgs;
use llmkernel::shell::cli::ShellArgs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn man_page(cmd: clap::Command, section: &str, extra: &str, builtins: bool) -> Vec<u8> {
    let cmd_for_synopsis = cmd.clone();
    let man = clap_mangen::Man::new(cmd)
        .section(section)
        .source(format!("llmkernel {}", env!("CARGO_PKG_VERSION")))
        .manual("llmkernel manual");
    let mut out = Vec::new();
    man.render_title(&mut out).expect("render");
    man.render_name_section(&mut out).expect("render");
    out.extend_from_slice(synopsis(&cmd_for_synopsis).as_bytes());
    man.render_description_section(&mut out).expect("render");
    man.render_options_section(&mut out).expect("render");
    if builtins {
        out.extend_from_slice(b".SH BUILTINS\n");
        for help in llmkernel::shell::builtins::ALL {
            let usage = help.usage.replace('\\', "\\e").replace('-', "\\-");
            out.extend_from_slice(
                format!(".TP\n.B {usage}\n{}\n", help.summary.replace('-', "\\-")).as_bytes(),
            );
        }
    }
    let extra = std::fs::read_to_string(Path::new(ROOT).join("man/src").join(extra))
        .expect("man/src fragment");
    out.extend_from_slice(extra.as_bytes());
    out
}

/// The SYNOPSIS section, with each option's argument named (`[--socket PATH]`), which
/// clap_mangen's own synopsis leaves out.
fn synopsis(cmd: &clap::Command) -> String {
    // Built, so that clap's own --help and --version are among the arguments.
    let mut cmd = cmd.clone();
    cmd.build();
    let roff = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let bold = |s: String| format!("\\fB{}\\fR", roff(&s));
    let italic = |s: String| format!("\\fI{}\\fR", roff(&s));
    let value = |arg: &clap::Arg| {
        arg.get_value_names()
            .map(|names| names.join(" "))
            .unwrap_or_else(|| arg.get_id().as_str().to_uppercase())
    };
    let mut line = bold(cmd.get_name().to_string());
    let mut args: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    // Options first, then positionals, as a usage line reads.
    args.sort_by_key(|a| a.is_positional());
    for arg in args {
        let name = if arg.is_positional() {
            italic(value(arg))
        } else {
            let flags: Vec<String> = [
                arg.get_short().map(|c| format!("-{c}")),
                arg.get_long().map(|l| format!("--{l}")),
            ]
            .into_iter()
            .flatten()
            .map(bold)
            .collect();
            let takes_value = matches!(
                arg.get_action(),
                clap::ArgAction::Set | clap::ArgAction::Append
            );
            let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
            match (takes_value, optional) {
                (true, false) => format!("{} {}", flags.join("|"), italic(value(arg))),
                (true, true) => format!("{} [{}]", flags.join("|"), italic(value(arg))),
                (false, _) => flags.join("|"),
            }
        };
        line.push_str(&if arg.is_required_set() {
            format!(" {name}")
        } else {
            format!(" [{name}]")
        });
    }
    format!(".SH SYNOPSIS\n{line}\n")
}

fn completions(cmd: fn() -> clap::Command, name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ]
    .into_iter()
    .map(|(shell, file)| {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd(), name, &mut out);
        (PathBuf::from("packaging/completions").join(file), out)
    })
    .collect()
}

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![
        (
            PathBuf::from("man/llmsh.1"),
            man_page(ShellArgs::command(), "1", "llmsh.extra.roff", true),
        ),
        (
            PathBuf::from("man/llmkernel.8"),
            man_page(KernelArgs::command(), "8", "llmkernel.extra.roff", false),
        ),
    ];
    files.extend(completions(ShellArgs::command, "llmsh"));
    files.extend(completions(KernelArgs::command, "llmkernel"));
    files
}

#[test]
fn committed_man_pages_and_completions_match_the_code() {
    let bless = std::env::var_os("LLMKERNEL_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, bytes) in generated() {
        let full = Path::new(ROOT).join(&path);
        if bless {
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(&full, &bytes).expect("write");
        } else if std::fs::read(&full).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run scripts/gen-docs): {stale:?}"
    );
}

#[test]
fn the_synopsis_names_every_option_argument() {
    let llmsh = std::fs::read_to_string(Path::new(ROOT).join("man/llmsh.1")).expect("llmsh.1");
    assert!(
        llmsh.contains(
            "\\fBllmsh\\fR [\\fB\\-\\-socket\\fR \\fIPATH\\fR] [\\fB\\-c\\fR \\fICOMMANDS\\fR]"
        ),
        "{llmsh}"
    );
    let kernel =
        std::fs::read_to_string(Path::new(ROOT).join("man/llmkernel.8")).expect("llmkernel.8");
    assert!(
        kernel.contains("[\\fB\\-\\-backend\\fR \\fIURL\\fR]"),
        "{kernel}"
    );
}

#[test]
fn man_pages_render_without_warnings() {
    if std::process::Command::new("groff")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: groff is not installed");
        return;
    }
    for page in ["man/llmsh.1", "man/llmkernel.8", "man/llmkernel.toml.5"] {
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(Path::new(ROOT).join(page))
            .output()
            .expect("groff");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && warnings.trim().is_empty(),
            "{page}: {warnings}"
        );
    }
}

#[test]
fn every_builtin_and_config_key_is_documented() {
    let llmsh = std::fs::read_to_string(Path::new(ROOT).join("man/llmsh.1")).expect("llmsh.1");
    for help in llmkernel::shell::builtins::ALL {
        assert!(
            llmsh.contains(&format!(".B {}", help.name)),
            "llmsh.1 lacks {}",
            help.name
        );
    }
    let example = std::fs::read_to_string(Path::new(ROOT).join("packaging/config.toml.example"))
        .expect("example");
    llmkernel::config::ConfigFile::parse(&example, Path::new("config.toml.example"))
        .expect("the example config parses");
    // Every commented-out default must be valid too: uncomment them all and parse again.
    let uncommented: String = example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) =>
            {
                rest
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    llmkernel::config::ConfigFile::parse(&uncommented, Path::new("example (uncommented)"))
        .expect("every documented default parses");
    let page = std::fs::read_to_string(Path::new(ROOT).join("man/llmkernel.toml.5"))
        .expect("llmkernel.toml.5");
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some((key, _)) = line.split_once(" = ") {
            let key = key.trim();
            if is_key(key) {
                assert!(
                    page.contains(&format!(".B {key}")),
                    "llmkernel.toml.5 lacks `{key}`"
                );
            }
        }
    }
}

fn is_key(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}
