//! Progress bars on stderr (indicatif), for the libraries' [`Progress`] callbacks.
//!
//! Bars are drawn only when stderr is a terminal and `--quiet` was not given; otherwise
//! every callback is a no-op and nothing but the normal output appears.
//!
//! [`ReportArgs`] holds `--json` and `--quiet`, shared by every command that has them: either
//! turns the bars off.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocil_layout::progress::Progress;

/// `--json` and `-q/--quiet`, with one meaning each on every command that has them (the
/// top-level help says what `-q` prints for each command): flattened into their arguments,
/// so the help text is the same everywhere.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// Print only the result, one item a line (see `ocil --help`): no progress bar or summary
    #[arg(long, short, conflicts_with = "json")]
    pub(crate) quiet: bool,
}

impl ReportArgs {
    /// The bars for these options: none with `--json` or `--quiet`.
    pub(crate) fn bars(&self) -> Bars {
        Bars::new(self.quiet || self.json)
    }
}

/// One bar at a time, replaced at each `begin`.
pub(crate) struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars on stderr unless `quiet` or stderr is not a terminal.
    pub(crate) fn new(quiet: bool) -> Bars {
        Bars { enabled: !quiet && std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if !self.enabled {
            return;
        }
        if let Ok(guard) = self.bar.lock()
            && let Some(bar) = guard.as_ref()
        {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn begin(&self, label: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix:>8} {spinner} {binary_bytes} {binary_bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.tick();
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(old) = guard.take() {
                old.finish();
                let _ = writeln!(std::io::stderr());
            }
            *guard = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        self.with(|b| b.inc(bytes));
    }

    fn end(&self) {
        if !self.enabled {
            return;
        }
        if let Ok(mut guard) = self.bar.lock()
            && let Some(bar) = guard.take()
        {
            // The final state stays on screen (what was done, how fast), on its own line.
            bar.finish();
            let _ = writeln!(std::io::stderr());
        }
    }
}
