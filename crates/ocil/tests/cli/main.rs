//! CLI tests of the `ocil` binary, in one test binary (ruff's pattern).
//!
//! - `archive_view`: `ocil ls FILE` and `ocil inspect FILE` on archives read in place;
//! - `help`: `help COMMAND`, `completions` and `man`, what clap derives from the CLI definition;
//! - `usage`: help, version, bad arguments, missing directories, non-layouts (snapshots);
//! - `commands`: every command on good layouts (snapshots of exit code, stdout and stderr);
//! - `bad_input`: damaged and hostile layouts, as one-line `assert_cmd` predicates;
//! - `carry`: `receipt`, deltas and volumes (`export --since`, `--volume-size`), imported and
//!   checked, and their refusals (snapshots);
//! - `copy`, `convert`: `ocil copy` and `ocil convert`, snapshots and their effects;
//! - `edit`: `config`, `annotate`, `rm` and their refusals (snapshots);
//! - `layers`: `append` and `index`, and their refusals (snapshots);
//! - `json`: `--json` of the commands that change a layout, and their errors as JSON;
//! - `lock`: `ocil` writers wait for the layout lock;
//! - `quiet`: `-q` on every command that has it: only the result on stdout;
//! - `rootfs`: `unpack`, `status`, `repack`, `export-rootfs` and their refusals (snapshots);
//! - `targets`: the target grammar every command shares: new `DIR:TAG` destinations,
//!   choosing an archive's image, transports, escapes and refusals (snapshots).
//!
//! Snapshots are files in `snapshots/`; `INSTA_UPDATE=always cargo test -p ocil --test cli`
//! rewrites them (review every change), and with `CI=true` insta writes nothing.

mod archive_view;
mod bad_input;
mod carry;
mod commands;
mod convert;
mod copy;
mod edit;
mod export;
mod help;
mod json;
mod layers;
mod lock;
#[path = "../common/peers.rs"]
mod peers;
mod quiet;
mod referrers;
mod rootfs;
mod support;
mod targets;
mod usage;
