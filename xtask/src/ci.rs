//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! fmt, clippy, tests (nextest when installed, then doctests, which nextest skips), rustdoc
//! with warnings as errors, tidy, `fixtures --check`, and a quick smoke run of the benchmarks.
//! `.ci/run` only has to call this.
//!
//! First it probes the oracle tests' outside resources (`oracles.rs`). Under `CI=true` a
//! missing one fails at once. Otherwise the tests that declare it (`needs_<resource>` in their
//! names) are left out by a filterset, so nextest reports them as skipped, and ci ends with
//! their count and names. The tests run with `OCIL_XTASK_PROBED=1`, which makes a test that
//! finds a resource missing fail instead of skip: under ci, a skip is never a pass.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;

use crate::Result;
use crate::oracles::{self, RESOURCES, Resource};

/// One step: its name, as a person would type it, and how to run it.
struct Step {
    name: String,
    run: Box<dyn Fn() -> Result<()>>,
}

fn cargo_step(
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
) -> Step {
    Step {
        name: name.to_owned(),
        run: Box::new(move || {
            let mut cmd = Command::new(crate::cargo());
            cmd.args(args).current_dir(crate::project_root());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let status = cmd.status()?;
            if status.success() { Ok(()) } else { Err(format!("exited with {status}").into()) }
        }),
    }
}

/// Whether `cargo nextest` is installed.
fn has_nextest() -> bool {
    Command::new(crate::cargo())
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The oracle tests of a run: `None` until the test step has listed them, then the names of
/// those it left out.
type Skipped = Rc<RefCell<Option<Vec<String>>>>;

/// The test step: list the tests (which builds them), check their `needs_` segments, note
/// which the `missing` resources leave out, then run the rest.
fn test_step(nextest: bool, missing: Vec<Resource>, skipped: Skipped) -> Step {
    let mut args: Vec<String> =
        if nextest { vec!["nextest".into(), "run".into()] } else { vec!["test".into()] };
    args.extend(["--workspace".into(), "--locked".into()]);
    if nextest {
        if let Some(filter) = oracles::filterset(&missing) {
            args.extend(["-E".into(), filter]);
        }
    } else if !missing.is_empty() {
        args.push("--".into());
        for r in &missing {
            args.extend(["--skip".into(), r.segment()]);
        }
    }
    let shown: Vec<String> =
        args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    Step {
        name: format!("cargo {}", shown.join(" ")),
        run: Box::new(move || {
            let mut left_out = Vec::new();
            let mut undeclared = Vec::new();
            let tests = list_tests(nextest)?;
            for test in &tests {
                match oracles::needs_of(test) {
                    Ok(needs) if needs.iter().any(|r| missing.contains(r)) => {
                        left_out.push(test.clone());
                    }
                    Ok(_) => {}
                    Err(name) => undeclared.push(name),
                }
            }
            if !undeclared.is_empty() {
                return Err(oracles::undeclared_names(&undeclared).into());
            }
            *skipped.borrow_mut() = Some(left_out);
            let status = Command::new(crate::cargo())
                .args(&args)
                .current_dir(crate::project_root())
                .env("OCIL_XTASK_PROBED", "1")
                .status()?;
            if status.success() { Ok(()) } else { Err(format!("exited with {status}").into()) }
        }),
    }
}

/// Every test of the workspace, as nextest names it (`ocil::archive docker::...`) or, without
/// nextest, as libtest does (`docker::...`).
fn list_tests(nextest: bool) -> Result<Vec<String>> {
    let mut cmd = Command::new(crate::cargo());
    if nextest {
        cmd.args(["nextest", "list", "--workspace", "--locked", "--message-format", "oneline"]);
    } else {
        cmd.args([
            "test",
            "--workspace",
            "--locked",
            "--tests",
            "--",
            "--list",
            "--format",
            "terse",
        ]);
    }
    let out =
        cmd.current_dir(crate::project_root()).stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("listing the tests exited with {}", out.status).into());
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .lines()
        .filter_map(|l| if nextest { Some(l) } else { l.strip_suffix(": test") })
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// The oracle resources that are missing here, after a line for each.
fn probe_resources() -> Vec<Resource> {
    println!("==> oracle resources");
    let mut missing = Vec::new();
    for r in RESOURCES {
        match r.probe() {
            Ok(()) => println!("    {:<15} found", r.name),
            Err(why) => {
                println!("    {:<15} missing: {why}", r.name);
                missing.push(r);
            }
        }
    }
    missing
}

/// The last lines of every run: how many oracle tests were left out, and which.
fn report_skipped(missing: &[Resource], skipped: &Option<Vec<String>>) {
    let names: Vec<&str> = missing.iter().map(|r| r.name).collect();
    match skipped {
        None if missing.is_empty() => {}
        None => println!("\nci: the tests did not run (missing: {})", names.join(", ")),
        Some(tests) if tests.is_empty() => println!("\nci: 0 skipped oracle tests"),
        Some(tests) => {
            println!("\nci: {} skipped oracle tests (missing: {}):", tests.len(), names.join(", "));
            for t in tests {
                println!("    {t}");
            }
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err(crate::usage("cargo xtask ci"));
    }
    let missing = probe_resources();
    if !missing.is_empty() && std::env::var("CI").as_deref() == Ok("true") {
        let names: Vec<&str> = missing.iter().map(|r| r.name).collect();
        return Err(format!(
            "CI=true, but oracle resources are missing ({}): no test may be skipped on CI \
             (.ci/run installs the peer tools, starts a Docker daemon and checks ../shared)",
            names.join(", ")
        )
        .into());
    }
    let skipped: Skipped = Rc::default();
    let tests = test_step(has_nextest(), missing.clone(), skipped.clone());
    let steps = [
        cargo_step("cargo fmt --all --check", &["fmt", "--all", "--check"], &[]),
        cargo_step(
            "cargo clippy --workspace --all-targets --locked -- -D warnings",
            &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
            &[],
        ),
        tests,
        cargo_step(
            "cargo test --doc --workspace --locked",
            &["test", "--doc", "--workspace", "--locked"],
            &[],
        ),
        cargo_step(
            "RUSTDOCFLAGS='-D warnings' cargo doc --no-deps --workspace --locked",
            &["doc", "--no-deps", "--workspace", "--locked"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        ),
        Step { name: "cargo xtask tidy".into(), run: Box::new(|| crate::tidy::run(&[])) },
        Step {
            name: "cargo xtask fixtures --check".into(),
            run: Box::new(|| crate::fixtures::run(&["--check".into()])),
        },
        Step {
            name: "cargo xtask bench all --quick".into(),
            run: Box::new(|| crate::bench::run(&["all".into(), "--quick".into()])),
        },
    ];
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        println!("\n==> [{}/{total}] {}", i + 1, step.name);
        let started = std::time::Instant::now();
        if let Err(e) = (step.run)() {
            report_skipped(&missing, &skipped.borrow());
            return Err(format!("ci step `{}` failed: {e}", step.name).into());
        }
        println!(
            "==> [{}/{total}] {} ok ({:.1}s)",
            i + 1,
            step.name,
            started.elapsed().as_secs_f64()
        );
    }
    println!("\nci: all {total} steps passed");
    report_skipped(&missing, &skipped.borrow());
    Ok(())
}
