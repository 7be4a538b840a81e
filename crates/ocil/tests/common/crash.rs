//! The SIGKILL harness the crash tests share: run `ocil`, kill it at a seeded moment, and
//! insist that a run that ended by itself succeeded; and the seeded generator (SplitMix64)
//! the kill moments and test bytes come from.
//!
//! Each test binary includes it with `#[path = "../common/crash.rs"] mod crash_harness;`.
//! The wait for the kill moment polls `try_wait` until a deadline: no check depends on a
//! sleep, whatever the moment the same properties must hold.

#![allow(dead_code, reason = "included by several test binaries, each using part of it")]

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A small seeded generator (SplitMix64): the same moments and bytes on every run.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The `ocil` binary under test, with `args`.
pub(crate) fn ocil_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocil"));
    cmd.args(args);
    cmd
}

/// Wait for `child` until `deadline`; its status when it exited by then.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_micros(300)));
    }
}

/// Spawn `cmd` (stdout and stderr discarded) and SIGKILL it after `delay` unless it
/// finished. Returns whether it was killed; a run that ended by itself must have succeeded.
pub(crate) fn kill_after(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn ocil");
    let status = match wait_until(&mut child, Instant::now() + delay) {
        Some(status) => status,
        None => {
            child.kill().expect("SIGKILL");
            child.wait().expect("wait")
        }
    };
    assert!(status.success() || status.signal() == Some(9), "{cmd:?} failed on its own: {status}");
    !status.success()
}
