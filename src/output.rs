//! Terminal output: progress (bars on a TTY, plain lines otherwise) and Docker-style human units and times.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use layerstore::progress::Progress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    Auto,
    Tty,
    Plain,
}

/// Items smaller than this get no plain-mode line (metadata files, configs).
const PLAIN_LINE_MIN_BYTES: u64 = 64 * 1024;

/// Progress on stderr: one bar per item on a terminal, one line per finished item otherwise.
pub enum StderrProgress {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    Plain {
        sizes: Mutex<HashMap<String, u64>>,
        /// Items smaller than this get no line.
        min_bytes: u64,
    },
}

impl StderrProgress {
    pub fn new(mode: ProgressMode) -> StderrProgress {
        let tty = match mode {
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Tty => true,
            ProgressMode::Plain => false,
        };
        if tty {
            StderrProgress::Bars {
                multi: MultiProgress::new(),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            StderrProgress::Plain {
                sizes: Mutex::new(HashMap::new()),
                min_bytes: PLAIN_LINE_MIN_BYTES,
            }
        }
    }

    /// Plain output gives every item a line, however small (`push` lists every layer, as Docker does).
    pub fn every_item(self) -> StderrProgress {
        match self {
            StderrProgress::Plain { sizes, .. } => StderrProgress::Plain {
                sizes,
                min_bytes: 0,
            },
            bars => bars,
        }
    }
}

fn short_item(item: &str) -> &str {
    let name = item.strip_prefix("sha256:").unwrap_or(item);
    let name = name.strip_prefix("blobs/sha256/").unwrap_or(name);
    if name.len() > 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        &name[..12]
    } else {
        name
    }
}

impl Progress for StderrProgress {
    fn start(&self, item: &str, total: u64) {
        match self {
            StderrProgress::Bars { multi, bars } => {
                if total < PLAIN_LINE_MIN_BYTES {
                    return;
                }
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:14} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(short_item(item).to_string());
                bars.lock()
                    .expect("not poisoned")
                    .insert(item.to_string(), bar);
            }
            StderrProgress::Plain { sizes, .. } => {
                sizes
                    .lock()
                    .expect("not poisoned")
                    .insert(item.to_string(), total);
            }
        }
    }

    fn advance(&self, item: &str, bytes: u64) {
        if let StderrProgress::Bars { bars, .. } = self {
            if let Some(bar) = bars.lock().expect("not poisoned").get(item) {
                bar.inc(bytes);
            }
        }
    }

    fn status(&self, item: &str, status: &str) {
        if let StderrProgress::Bars { bars, .. } = self {
            if let Some(bar) = bars.lock().expect("not poisoned").get(item) {
                bar.set_message(status.to_string());
            }
        }
    }

    fn finish(&self, item: &str, status: &str) {
        match self {
            StderrProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().expect("not poisoned").remove(item) {
                    match status {
                        // Nothing was transferred: keep the bar where it stopped rather than showing it full.
                        "exists" | "mounted" | "failed" => {
                            bar.abandon_with_message(status.to_string())
                        }
                        _ => bar.finish_with_message(status.to_string()),
                    }
                }
            }
            StderrProgress::Plain { sizes, min_bytes } => {
                let size = sizes
                    .lock()
                    .expect("not poisoned")
                    .remove(item)
                    .unwrap_or(0);
                if size >= *min_bytes {
                    eprintln!("{}: {status} {}", short_item(item), human_size(size));
                }
            }
        }
    }
}

/// Sizes as Docker prints them (go-units `HumanSize`: decimal units, four significant digits).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let decimals = match value {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{value:.decimals$}");
    let trimmed = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{trimmed}{}", UNITS[unit])
}

/// "2 hours ago", as `docker images` prints a creation time given in RFC 3339 (go-units `HumanDuration`).
pub fn time_ago(created: Option<&str>) -> String {
    let parsed = created.and_then(|c| {
        time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
    });
    let Some(created) = parsed else {
        return "N/A".to_string();
    };
    let seconds = (time::OffsetDateTime::now_utc() - created)
        .whole_seconds()
        .max(0);
    let hours = seconds / 3600;
    let text = match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".to_string(),
        s if s < 3600 => format!("{} minutes", s / 60),
        _ if hours < 2 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 14 => format!("{} days", hours / 24),
        _ if hours < 24 * 90 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
        assert_eq!(human_size(4_000_000), "4MB");
    }
}
