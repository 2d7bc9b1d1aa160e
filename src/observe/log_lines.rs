//! Progress for a log: indicatif draws nothing when standard error is not a terminal (a long
//! sweep under `nohup` writing to a file), so there a bar's state is written as one plain line
//! every few seconds instead, and once more when the work ends.

use indicatif::{HumanDuration, ProgressBar};
use std::io::Write;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a log gets a line: often enough to see a run move, seldom enough that a
/// three-hour sweep writes about a thousand lines.
pub const EVERY: Duration = Duration::from_secs(10);

/// Writes `bar` as a line every `every` until dropped; see [`LogLines::for_stderr`].
pub struct LogLines {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LogLines {
    /// Lines on standard error when it is not a terminal and the run is not `quiet`; nothing
    /// otherwise (the bar draws itself there).
    pub fn for_stderr(bar: &ProgressBar, label: &str, quiet: bool) -> Option<LogLines> {
        use std::io::IsTerminal;
        if quiet || std::io::stderr().is_terminal() {
            return None;
        }
        Some(LogLines::start(
            bar.clone(),
            label.to_string(),
            EVERY,
            Box::new(std::io::stderr()),
        ))
    }

    /// Writes `bar`'s line to `out` every `every`, and a last one when dropped unless nothing
    /// was done and nothing written (work refused before it began).
    pub fn start(
        bar: ProgressBar,
        label: String,
        every: Duration,
        mut out: Box<dyn Write + Send>,
    ) -> LogLines {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut written = false;
            loop {
                let last = !matches!(
                    stopped.recv_timeout(every),
                    Err(mpsc::RecvTimeoutError::Timeout)
                );
                // Work refused before it began (bad input) leaves the log to its error.
                if last && !written && bar.position() == 0 {
                    break;
                }
                // A log that cannot be written to is no reason to stop the work.
                let _ = writeln!(out, "{}", line(&bar, &label));
                written = true;
                if last {
                    let _ = out.flush();
                    break;
                }
            }
        });
        LogLines {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `label: done/length (percent) message, elapsed, ETA eta`; the ETA is left out until some
/// work is done, when it would be a guess from nothing, and is [`eta`] at the average rate.
pub fn line(bar: &ProgressBar, label: &str) -> String {
    let done = bar.position();
    let length = bar.length().unwrap_or(0);
    let percent = (done.min(length) * 100).checked_div(length).unwrap_or(0);
    let message = bar.message();
    let mut s = format!("{label}: {done}/{length} ({percent}%)");
    if !message.is_empty() {
        s.push(' ');
        s.push_str(&message);
    }
    s.push_str(&format!(", {} elapsed", HumanDuration(bar.elapsed())));
    if done > 0 && done < length {
        let left = eta(bar.elapsed(), done, length);
        s.push_str(&format!(", ETA {}", HumanDuration(left)));
    }
    s
}

/// The time left for `length - done` more at the average rate so far (`done` in `elapsed`,
/// `done` > 0). A log is read a line at a time, tens of seconds apart, so its ETA must not
/// swing with the last seconds' rate as a bar's own estimate does (a sweep's log read 30, 42,
/// then 55 minutes in 20 s when two points ended and the next two began).
pub fn eta(elapsed: Duration, done: u64, length: u64) -> Duration {
    elapsed.mul_f64(length.saturating_sub(done) as f64 / done.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Shared {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[test]
    fn a_log_gets_the_bars_count_percent_and_message_and_a_last_line_when_the_work_ends() {
        let bar = ProgressBar::hidden();
        bar.set_length(400);
        bar.set_message("2/6 points");
        let out = Shared::default();
        let log = LogLines::start(
            bar.clone(),
            "sweep x".into(),
            Duration::from_secs(3600),
            Box::new(out.clone()),
        );
        bar.set_position(100);
        drop(log);
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("sweep x: 100/400 (25%) 2/6 points, "),
            "{lines:?}"
        );
        assert!(lines[0].contains("elapsed, ETA "), "{lines:?}");
    }

    /// A sweep 25 min in, 5,462 of 15,640 iterations done, has 46.6 min left at its average
    /// rate (the bar's recent-rate estimate said 2 hours).
    #[test]
    fn a_logs_eta_is_the_work_left_at_the_average_rate_so_far() {
        let left = eta(Duration::from_secs(25 * 60), 5462, 15640);
        let want = 25.0 * 60.0 * (15640.0 - 5462.0) / 5462.0;
        assert!((left.as_secs_f64() - want).abs() < 1e-6, "{left:?}");
        assert!((left.as_secs_f64() / 60.0 - 46.6).abs() < 0.05, "{left:?}");
        assert_eq!(eta(Duration::from_secs(10), 1, 2), Duration::from_secs(10));
        assert_eq!(eta(Duration::from_secs(10), 2, 2), Duration::ZERO);
    }

    #[test]
    fn a_log_gets_no_line_for_work_refused_before_it_began() {
        let bar = ProgressBar::hidden();
        bar.set_length(10);
        let out = Shared::default();
        drop(LogLines::start(
            bar,
            "run".into(),
            Duration::from_secs(3600),
            Box::new(out.clone()),
        ));
        assert_eq!(out.lines(), Vec::<String>::new());
    }

    #[test]
    fn a_log_gets_a_line_every_interval_while_the_work_runs() {
        let bar = ProgressBar::hidden();
        bar.set_length(10);
        let out = Shared::default();
        let log = LogLines::start(
            bar.clone(),
            "run".into(),
            Duration::from_millis(5),
            Box::new(out.clone()),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while out.lines().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(log);
        let lines = out.lines();
        assert!(
            lines.len() >= 4,
            "three lines while running, one at the end: {lines:?}"
        );
        assert!(lines[0].starts_with("run: 0/10 (0%), "), "{lines:?}");
        assert!(
            lines[0].ends_with(" elapsed"),
            "no ETA before any work: {lines:?}"
        );
    }
}
