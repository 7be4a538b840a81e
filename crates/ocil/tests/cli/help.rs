//! What clap derives from the command-line definition: `ocil help COMMAND` (checked against
//! `ocil COMMAND --help`).

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
