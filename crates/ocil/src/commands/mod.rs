//! One file per subcommand; `run` dispatches.

pub(crate) mod annotate;
pub(crate) mod append;
mod cat;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod convert;
pub(crate) mod copy;
mod edited;
pub(crate) mod export;
pub(crate) mod export_rootfs;
mod fsck;
mod gc;
mod import;
pub(crate) mod index;
mod init;
mod inspect;
pub(crate) mod login;
mod ls;
pub(crate) mod man;
mod new;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod receipt;
pub(crate) mod referrers;
pub(crate) mod repack;
pub(crate) mod rm;
pub(crate) mod serve;
pub(crate) mod status;
pub(crate) mod tag;
pub(crate) mod unpack;

use crate::Outcome;
use crate::cli::{Cli, Command};

pub(crate) fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Fsck(a) => fsck::run(a),
        Command::Gc(a) => gc::run(a),
        Command::Tag(a) => tag::run_tag(a),
        Command::Untag(a) => tag::run_untag(a),
        Command::New(a) => new::run(a),
        Command::Config(a) => config::run(*a),
        Command::Annotate(a) => annotate::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Import(a) => import::run(a),
        Command::Copy(a) => copy::run(a),
        Command::Pull(a) => pull::run(a),
        Command::Push(a) => push::run(a),
        Command::Login(a) => login::run_login(a),
        Command::Logout(a) => login::run_logout(a),
        Command::Convert(a) => convert::run(a),
        Command::Append(a) => append::run(a),
        Command::Index(a) => index::run(a),
        Command::Export(a) => export::run(a),
        Command::Receipt(a) => receipt::run(a),
        Command::Referrers(a) => referrers::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
        Command::Unpack(a) => unpack::run(a),
        Command::Status(a) => status::run(a),
        Command::Repack(a) => repack::run(a),
        Command::ExportRootfs(a) => export_rootfs::run(a),
    }
}
