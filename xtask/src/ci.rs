//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.
//!
//! fmt, clippy, tests (nextest when installed, then doctests, which nextest skips), rustdoc
//! with warnings as errors, tidy, `fixtures --check`, and a quick smoke run of the benchmarks.
//! `.ci/run` only has to call this.

use std::process::Command;

use crate::Result;

/// One step: its name, as a person would type it, and how to run it.
struct Step {
    name: &'static str,
    run: Box<dyn Fn() -> Result<()>>,
}

fn cargo_step(
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
) -> Step {
    Step {
        name,
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

pub(crate) fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        return Err(crate::usage("cargo xtask ci"));
    }
    let tests = if has_nextest() {
        cargo_step(
            "cargo nextest run --workspace --locked",
            &["nextest", "run", "--workspace", "--locked"],
            &[],
        )
    } else {
        cargo_step("cargo test --workspace --locked", &["test", "--workspace", "--locked"], &[])
    };
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
        Step { name: "cargo xtask tidy", run: Box::new(|| crate::tidy::run(&[])) },
        Step {
            name: "cargo xtask fixtures --check",
            run: Box::new(|| crate::fixtures::run(&["--check".into()])),
        },
        Step {
            name: "cargo xtask bench all --quick",
            run: Box::new(|| crate::bench::run(&["all".into(), "--quick".into()])),
        },
    ];
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        println!("\n==> [{}/{total}] {}", i + 1, step.name);
        let started = std::time::Instant::now();
        if let Err(e) = (step.run)() {
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
    Ok(())
}
