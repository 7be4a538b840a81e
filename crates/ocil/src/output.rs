//! All printing: the only module that writes to stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{self, Write};

/// `error: <top>` then one `  caused by: <cause>` line per cause.
pub(crate) fn print_error(e: &anyhow::Error) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(err, "  caused by: {cause}");
    }
}

/// A warning on stderr.
pub(crate) fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "warning: {msg}");
}

/// An error as JSON on stdout, for `--json`: `{"error": {"message", "causes", "exit_code"}}`.
pub(crate) fn json_error(e: &anyhow::Error) {
    let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
    let v = serde_json::json!({
        "error": {"message": e.to_string(), "causes": causes, "exit_code": 2}
    });
    let _ = json(&v);
}

/// A note on stderr (`note: ...`): what a command did besides its result, kept off stdout
/// so scripts reading the result are not disturbed.
pub(crate) fn note(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "note: {msg}");
}

/// One line on stdout, flushed at once (a script may be waiting for it).
pub(crate) fn line(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// One access-log line on stderr, whole (requests are answered on several threads).
pub(crate) fn log_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

/// Locked, buffered stdout.
pub(crate) fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::with_capacity(64 * 1024, io::stdout().lock())
}

/// Print JSON with a trailing newline.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = stdout();
    // As an `io::Error` (the inner one, for a write error), so a broken pipe is seen as one.
    serde_json::to_writer_pretty(&mut out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Human size: `734 B`, `1.2 KiB`, `3.4 MiB`.
pub(crate) fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Render rows as aligned columns.
pub(crate) fn table(out: &mut impl Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, header.to_vec())?;
    for r in rows {
        line(out, r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}
