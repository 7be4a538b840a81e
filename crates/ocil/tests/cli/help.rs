//! What clap derives from the command-line definition: `ocil help COMMAND`, `ocil completions
//! SHELL` and `ocil man --out DIR` (snapshots, and checks against `ocil --help`).

use assert_cmd::assert::OutputAssertExt;

use crate::support::{TestDir, snap};

/// The commands `ocil --help` lists, `help` included.
fn commands(t: &TestDir) -> Vec<String> {
    let out = t.ocil().arg("--help").output().expect("run ocil --help");
    let help = String::from_utf8(out.stdout).expect("help is UTF-8");
    let list = help.split_once("Commands:\n").expect("a command list").1;
    let list = list.split_once("\n\n").expect("the list ends").0;
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().expect("a command name").to_owned())
        .collect()
}

#[test]
fn help_command() {
    let t = TestDir::new();
    // `ocil help` is `ocil --help`, and `ocil help COMMAND` is `ocil COMMAND --help`, as in
    // cargo and git.
    let top = t.ocil().arg("--help").output().unwrap();
    t.ocil().arg("help").assert().success().stdout(top.stdout).stderr("");
    let commands = commands(&t);
    assert!(commands.contains(&"help".to_owned()), "`ocil --help` lists `help`");
    for command in commands.iter().filter(|c| *c != "help") {
        let long = t.ocil().args([command, "--help"]).output().unwrap();
        assert!(long.status.success());
        t.ocil().args(["help", command]).assert().success().stdout(long.stdout).stderr("");
    }
    snap!(t, "help_unknown_command", t.ocil().args(["help", "list"]));
}

#[test]
fn completions_help() {
    let t = TestDir::new();
    snap!(t, "help_completions", t.ocil().args(["completions", "--help"]));
}

#[test]
fn completions_bash() {
    let t = TestDir::new();
    let out = t.ocil().args(["completions", "bash"]).output().expect("run ocil");
    out.clone().assert().success().stderr("");
    let script = String::from_utf8(out.stdout).expect("the script is UTF-8");
    // The whole script is about a thousand lines; the snapshot keeps the top level (every
    // command), two commands' cases and the registration, so a new flag elsewhere does not
    // churn it.
    let mut excerpt = String::new();
    for case in ["ocil", "ocil__subcmd__completions", "ocil__subcmd__gc"] {
        excerpt.push_str(&case_block(&script, case));
    }
    let registration = script.rfind("\nif [[ ").expect("the `complete` lines");
    excerpt.push_str(&script[registration + 1..]);
    insta::assert_snapshot!("completions_bash_excerpt", excerpt);
    // Every command is completed, `help` too.
    for command in commands(&t) {
        assert!(script.contains(&format!("ocil,{command})")), "`{command}` is not completed");
    }
}

/// The `NAME)` case of the bash script's `case "${cmd}"`, up to its `;;`.
fn case_block(script: &str, name: &str) -> String {
    let start = script.find(&format!("\n        {name})\n")).expect("the case") + 1;
    let len = script[start..].find("\n            ;;\n").expect("the end of the case");
    format!("{}\n            ;;\n", &script[start..start + len])
}

#[test]
fn completions_every_shell() {
    let t = TestDir::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = t.ocil().args(["completions", shell]).output().expect("run ocil");
        out.clone().assert().success().stderr("");
        let script = String::from_utf8(out.stdout).expect("the script is UTF-8");
        assert!(script.contains("ocil") && script.contains("completions"), "{shell}: {script}");
    }
}

#[test]
fn completions_refuses_an_unknown_shell() {
    let t = TestDir::new();
    snap!(t, "completions_unknown_shell", t.ocil().args(["completions", "tcsh"]));
    snap!(t, "completions_no_shell", t.ocil().arg("completions"));
}

#[test]
fn man_help() {
    let t = TestDir::new();
    snap!(t, "help_man", t.ocil().args(["man", "--help"]));
}

#[test]
fn man_pages() {
    let t = TestDir::new();
    snap!(t, "man_out", t.ocil().args(["man", "--out", "man"]));
    // ocil.1, and one page per command of `ocil --help` (`help` has none).
    let mut expected: Vec<String> = commands(&t)
        .into_iter()
        .filter(|c| c != "help")
        .map(|c| format!("ocil-{c}.1"))
        .chain(["ocil.1".to_owned()])
        .collect();
    expected.sort();
    let mut written: Vec<String> = fs_err::read_dir(t.join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, expected);

    let page = fs_err::read_to_string(t.join("man/ocil-tag.1")).unwrap();
    let mut settings = t.settings();
    settings.add_filter(&env!("CARGO_PKG_VERSION").replace('.', r"\."), "[VERSION]");
    settings.bind(|| insta::assert_snapshot!("man_ocil_tag", page));
}

#[test]
fn man_refuses_a_file_as_directory() {
    let t = TestDir::new();
    fs_err::write(t.join("file"), "not a directory").unwrap();
    snap!(t, "man_out_is_a_file", t.ocil().args(["man", "--out", "file"]));
}
