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

use std::collections::HashMap;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
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

/// One bar at a time, replaced at each `begin`; with [`Bars::per_blob`], a bar per blob
/// in flight under it (on a terminal), or a line per blob (otherwise).
pub(crate) struct Bars {
    enabled: bool,
    bar: Mutex<Option<ProgressBar>>,
    /// Per-blob bars and lines asked for, and not quiet.
    per_blob: bool,
    multi: Mutex<Option<MultiProgress>>,
    items: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    /// Bars on stderr unless `quiet` or stderr is not a terminal.
    pub(crate) fn new(quiet: bool) -> Bars {
        Bars {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            per_blob: false,
            multi: Mutex::new(None),
            items: Mutex::new(HashMap::new()),
        }
    }

    /// A spinner with `label` and the time elapsed, for a phase whose size is not known
    /// (gc's marking), until the next `begin` or `end`.
    pub(crate) fn spinner(&self, label: &str) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix:>8} {spinner} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(old) = guard.take() {
                old.finish_and_clear();
            }
            *guard = Some(bar);
        }
    }

    /// Take the spinner or bar off the screen, leaving nothing behind.
    pub(crate) fn clear(&self) {
        if let Ok(mut guard) = self.bar.lock()
            && let Some(bar) = guard.take()
        {
            bar.finish_and_clear();
        }
    }

    /// Also show each blob: its own bar on a terminal, a line on stderr when it is done
    /// otherwise (unless quiet).
    pub(crate) fn per_blob(mut self, quiet: bool) -> Bars {
        self.per_blob = !quiet;
        self
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
        let bar = if self.per_blob {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let bar = multi.add(bar);
            if let Ok(mut m) = self.multi.lock() {
                *m = Some(multi);
            }
            bar
        } else {
            bar
        };
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

    fn item_begin(&self, name: &str, size: u64) {
        if !(self.enabled && self.per_blob) {
            return;
        }
        let Ok(multi) = self.multi.lock() else { return };
        let Some(multi) = multi.as_ref() else { return };
        let bar = multi.add(
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden()).with_style(
                ProgressStyle::with_template(
                    "{prefix:>20} [{bar:30}] {binary_bytes}/{binary_total_bytes}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
        );
        bar.set_prefix(short_digest(name));
        if let Ok(mut items) = self.items.lock() {
            items.insert(name.to_owned(), bar);
        }
    }

    fn item_advance(&self, name: &str, bytes: u64) {
        if !(self.enabled && self.per_blob) {
            return;
        }
        if let Ok(items) = self.items.lock()
            && let Some(bar) = items.get(name)
        {
            bar.inc(bytes);
        }
    }

    fn item_end(&self, name: &str, size: u64, ok: bool) {
        if !self.per_blob {
            return;
        }
        if self.enabled {
            if let Ok(mut items) = self.items.lock()
                && let Some(bar) = items.remove(name)
            {
                bar.finish_and_clear();
                if let Ok(multi) = self.multi.lock()
                    && let Some(multi) = multi.as_ref()
                {
                    multi.remove(&bar);
                }
            }
            return;
        }
        if ok {
            let _ =
                writeln!(std::io::stderr().lock(), "blob {name} ({})", crate::output::size(size));
        }
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

/// `sha256:` and 12 hex digits, as `ocil ls` shows digests.
fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.to_owned(),
    }
}
