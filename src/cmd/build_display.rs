//! How `lade build` shows its steps: plain lines as BuildKit's `--progress=plain` prints them, or a live view on a
//! terminal as BuildKit's tty mode draws it — one line per step with its state and time, the last lines of a
//! running step's output under it, and, when the build fails, the failed step marked ERROR with its last lines kept
//! on screen (the steps running beside it marked CANCELED). The bytes a COPY or ADD reads from the build context
//! ("transferring context: 12.35MB 0.4s", as BuildKit words it) and, for a large one, writes ("copying: …") show
//! under its step, or as lines of their own in plain mode.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use builder::engine::{Reporter, Transfer, TransferProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// How many of a running step's last output lines the terminal view shows.
const TAIL_LINES: usize = 6;

/// A COPY's written bytes show from this many on: BuildKit shows none, and a small copy is not worth a line.
const LARGE_COPY: u64 = 1_000_000;

/// How often plain mode prints a transfer's running count (its total always).
const PLAIN_TRANSFER_INTERVAL: Duration = Duration::from_secs(1);

/// A byte count as BuildKit shows it: decimal units with two decimals (`2.10kB`, `12.35MB`), bytes whole (`32B`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.2}{}", UNITS[unit])
}

/// A transfer's line as BuildKit words it (`transferring context: 12.35MB 0.4s done`); `None` for a small copy.
fn transfer_line(progress: &TransferProgress) -> Option<String> {
    let what = match progress.transfer {
        Transfer::Context => "transferring context",
        Transfer::Copy if progress.bytes < LARGE_COPY => return None,
        Transfer::Copy => "copying",
    };
    Some(format!(
        "{what}: {} {:.1}s{}",
        human_bytes(progress.bytes),
        progress.elapsed.as_secs_f64(),
        if progress.done { " done" } else { "" }
    ))
}

/// The reporter for a build: plain or live.
pub enum BuildDisplay {
    Plain(PlainDisplay),
    Tty(TtyDisplay),
}

impl BuildDisplay {
    /// The live view on a terminal (unless `quiet`), plain lines otherwise; `explain` shows cache-miss reasons.
    pub fn new(tty: bool, quiet: bool, explain: bool) -> BuildDisplay {
        if tty && !quiet {
            BuildDisplay::Tty(TtyDisplay {
                multi: MultiProgress::new(),
                steps: Mutex::new(BTreeMap::new()),
                explain,
            })
        } else {
            BuildDisplay::Plain(PlainDisplay {
                quiet,
                explain: explain || !tty,
                started: Mutex::new(BTreeMap::new()),
                transfers_printed: Mutex::new(HashMap::new()),
            })
        }
    }

    pub fn reporter(&self) -> &dyn Reporter {
        match self {
            BuildDisplay::Plain(plain) => plain,
            BuildDisplay::Tty(tty) => tty,
        }
    }

    /// The build failed in the step named `failed` (as in the error, `[2/5] RUN make`): on a terminal, that step is
    /// marked ERROR with its last lines left on screen, and the other unfinished steps CANCELED.
    pub fn failed(&self, failed: Option<&str>) {
        if let BuildDisplay::Tty(tty) = self {
            tty.failed(failed);
        }
    }
}

/// Plain progress lines on stderr, like BuildKit's `--progress=plain`.
pub struct PlainDisplay {
    quiet: bool,
    explain: bool,
    started: Mutex<BTreeMap<usize, Instant>>,
    /// When each step's transfer last printed its running count.
    transfers_printed: Mutex<HashMap<(usize, Transfer), Instant>>,
}

impl PlainDisplay {
    fn line(&self, text: &str) {
        if !self.quiet {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{text}");
        }
    }
}

impl Reporter for PlainDisplay {
    fn step(&self, id: usize, name: &str) {
        self.started
            .lock()
            .expect("not poisoned")
            .insert(id, Instant::now());
        self.line(&format!("#{id} {name}"));
    }

    fn cached(&self, id: usize) {
        self.line(&format!("#{id} CACHED"));
    }

    fn output(&self, id: usize, data: &[u8]) {
        let elapsed = self
            .started
            .lock()
            .expect("not poisoned")
            .get(&id)
            .map_or(0.0, |s| s.elapsed().as_secs_f64());
        for line in String::from_utf8_lossy(data).lines() {
            self.line(&format!("#{id} {elapsed:.3} {line}"));
        }
    }

    fn note(&self, id: usize, message: &str) {
        if self.explain {
            self.line(&format!("#{id} {message}"));
        }
    }

    fn done(&self, id: usize, elapsed: Duration) {
        self.line(&format!("#{id} DONE {:.1}s", elapsed.as_secs_f64()));
    }

    fn bytes(&self, id: usize, progress: &TransferProgress) {
        let Some(line) = transfer_line(progress) else {
            return;
        };
        // A log, not a view: a running count once the transfer has taken a while, at most every interval.
        let mut printed = self.transfers_printed.lock().expect("not poisoned");
        let key = (id, progress.transfer);
        let recent = printed
            .get(&key)
            .is_some_and(|at| at.elapsed() < PLAIN_TRANSFER_INTERVAL);
        if !progress.done && (progress.elapsed < PLAIN_TRANSFER_INTERVAL || recent) {
            return;
        }
        printed.insert(key, Instant::now());
        self.line(&format!("#{id} {line}"));
    }
}

/// One step on the terminal: its line, the lines of its output tail under it, and the text behind them.
struct StepView {
    name: String,
    bar: ProgressBar,
    /// A line per transfer under the step's, kept when it is over.
    transfer_bars: Vec<(Transfer, ProgressBar)>,
    tail_bars: Vec<ProgressBar>,
    tail: VecDeque<String>,
    /// Output after the last newline.
    partial: String,
    cached: bool,
    finished: bool,
}

/// A live view on a terminal, like BuildKit's.
pub struct TtyDisplay {
    multi: MultiProgress,
    steps: Mutex<BTreeMap<usize, StepView>>,
    explain: bool,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("valid template")
}

/// A line cut to `width` characters, tabs and carriage returns made harmless for a one-line view.
fn fit(line: &str, width: usize) -> String {
    let line = line
        .rsplit('\r')
        .next()
        .unwrap_or(line)
        .replace('\t', "    ");
    line.chars().take(width).collect()
}

impl TtyDisplay {
    /// The room for a line: the terminal's width (or `$COLUMNS` where the terminal reports none), less a margin.
    fn width(&self) -> usize {
        let columns = rustix::termios::tcgetwinsize(std::io::stderr())
            .ok()
            .map(|size| usize::from(size.ws_col))
            .filter(|&columns| columns > 0)
            .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
            .unwrap_or(100);
        columns.max(40) - 6
    }

    /// Shows the step's tail: one line bar per kept line, the newest last, added under the step as they come.
    fn show_tail(&self, view: &mut StepView) {
        let width = self.width();
        while view.tail_bars.len() < view.tail.len() {
            let after = view
                .tail_bars
                .last()
                .or(view.transfer_bars.last().map(|(_, bar)| bar))
                .unwrap_or(&view.bar)
                .clone();
            let bar = self.multi.insert_after(&after, ProgressBar::new_spinner());
            bar.set_style(style("  {msg:.dim}"));
            view.tail_bars.push(bar);
        }
        for (bar, line) in view.tail_bars.iter().zip(&view.tail) {
            bar.set_message(format!("│ {}", fit(line, width)));
        }
    }

    fn failed(&self, failed: Option<&str>) {
        let mut steps = self.steps.lock().expect("not poisoned");
        for view in steps.values_mut().filter(|v| !v.finished) {
            view.finished = true;
            for (_, bar) in &view.transfer_bars {
                bar.finish();
            }
            if failed.is_some_and(|name| name == view.name) {
                if !view.partial.is_empty() {
                    view.tail.push_back(std::mem::take(&mut view.partial));
                    if view.tail.len() > TAIL_LINES {
                        view.tail.pop_front();
                    }
                    self.show_tail(view);
                }
                view.bar.set_style(style("  #{prefix} {msg:.red.bold}"));
                view.bar.finish_with_message("ERROR");
                for bar in &view.tail_bars {
                    bar.finish();
                }
            } else {
                view.bar.set_style(style("  #{prefix} {msg:.yellow}"));
                view.bar.finish_with_message("CANCELED");
                for bar in &view.tail_bars {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

impl Reporter for TtyDisplay {
    fn step(&self, id: usize, name: &str) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(style("{spinner} #{prefix} {wide_msg} {elapsed:>4}"));
        // One screen line per step: a long command is cut, as BuildKit cuts it.
        bar.set_prefix(fit(
            &format!("{id} {name}"),
            self.width().saturating_sub(16),
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        self.steps.lock().expect("not poisoned").insert(
            id,
            StepView {
                name: name.to_string(),
                bar,
                transfer_bars: Vec::new(),
                tail_bars: Vec::new(),
                tail: VecDeque::new(),
                partial: String::new(),
                cached: false,
                finished: false,
            },
        );
    }

    fn cached(&self, id: usize) {
        if let Some(view) = self.steps.lock().expect("not poisoned").get_mut(&id) {
            view.cached = true;
        }
    }

    fn output(&self, id: usize, data: &[u8]) {
        let mut steps = self.steps.lock().expect("not poisoned");
        let Some(view) = steps.get_mut(&id) else {
            return;
        };
        view.partial.push_str(&String::from_utf8_lossy(data));
        while let Some(end) = view.partial.find('\n') {
            let line: String = view.partial.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            if line.trim().is_empty() {
                continue;
            }
            view.tail.push_back(line);
            if view.tail.len() > TAIL_LINES {
                view.tail.pop_front();
            }
        }
        self.show_tail(view);
    }

    fn note(&self, id: usize, message: &str) {
        if self.explain {
            let _ = self.multi.println(format!("#{id} {message}"));
        }
    }

    fn done(&self, id: usize, elapsed: Duration) {
        let mut steps = self.steps.lock().expect("not poisoned");
        let Some(view) = steps.get_mut(&id) else {
            return;
        };
        view.finished = true;
        // As BuildKit, a step that succeeded leaves only its line (and its transfers').
        for (_, bar) in &view.transfer_bars {
            bar.finish();
        }
        for bar in view.tail_bars.drain(..) {
            bar.finish_and_clear();
        }
        let state = if view.cached {
            "CACHED".to_string()
        } else {
            format!("DONE {:.1}s", elapsed.as_secs_f64())
        };
        view.bar.set_style(style("  #{prefix} {msg}"));
        view.bar.finish_with_message(state);
    }

    fn bytes(&self, id: usize, progress: &TransferProgress) {
        let Some(line) = transfer_line(progress) else {
            return;
        };
        let mut steps = self.steps.lock().expect("not poisoned");
        let Some(view) = steps.get_mut(&id) else {
            return;
        };
        let known = view
            .transfer_bars
            .iter()
            .position(|(transfer, _)| *transfer == progress.transfer);
        let index = known.unwrap_or_else(|| {
            let after = view
                .transfer_bars
                .last()
                .map_or(&view.bar, |(_, bar)| bar)
                .clone();
            let bar = self.multi.insert_after(&after, ProgressBar::new_spinner());
            bar.set_style(style("    {msg}"));
            view.transfer_bars.push((progress.transfer, bar));
            view.transfer_bars.len() - 1
        });
        let bar = &view.transfer_bars[index].1;
        let line = format!("=> {line}");
        if progress.done {
            bar.finish_with_message(line);
        } else {
            bar.set_message(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_as_buildkit_shows_them() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(999), "999B");
        assert_eq!(human_bytes(2_100), "2.10kB");
        assert_eq!(human_bytes(12_345_678), "12.35MB");
        assert_eq!(human_bytes(3_000_000_000), "3.00GB");
    }

    #[test]
    fn transfers_are_worded_as_buildkit_words_them_and_small_copies_stay_quiet() {
        let progress = |transfer, bytes, done| TransferProgress {
            transfer,
            bytes,
            elapsed: Duration::from_millis(420),
            done,
        };
        assert_eq!(
            transfer_line(&progress(Transfer::Context, 12_345_678, true)).unwrap(),
            "transferring context: 12.35MB 0.4s done"
        );
        assert_eq!(
            transfer_line(&progress(Transfer::Context, 32, false)).unwrap(),
            "transferring context: 32B 0.4s"
        );
        assert_eq!(
            transfer_line(&progress(Transfer::Copy, 5_000_000, true)).unwrap(),
            "copying: 5.00MB 0.4s done"
        );
        assert_eq!(
            transfer_line(&progress(Transfer::Copy, 999_999, true)),
            None
        );
    }

    #[test]
    fn lines_are_cut_to_the_width_and_keep_what_a_carriage_return_left() {
        assert_eq!(fit("progress 10%\rprogress 100%", 80), "progress 100%");
        assert_eq!(fit("a\tb", 80), "a    b");
        assert_eq!(fit(&"x".repeat(200), 10), "x".repeat(10));
    }
}
