//! A run's progress for another process to watch: the iterations completed, written to a file
//! at most every [`EVERY`] (atomically, so a reader never sees half a number). The testbed's validation starts rank 0 with [`ENV`] naming such a
//! file and moves its own bar as the number grows.

use super::output::write_atomic;
use crate::observe::Observer;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The variable that names the file rank 0 keeps its progress in.
pub const ENV: &str = "ASGD_SIM_PROGRESS_FILE";
/// How often the file is rewritten while iterations complete.
pub const EVERY: Duration = Duration::from_millis(250);

/// Keeps the iterations completed in a file.
pub struct ProgressFile {
    path: PathBuf,
    written: Option<Instant>,
}

impl ProgressFile {
    pub fn new(path: &Path) -> Self {
        ProgressFile {
            path: path.to_path_buf(),
            written: None,
        }
    }

    /// The file named by [`ENV`], if it is set.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(ENV).map(|p| ProgressFile::new(Path::new(&p)))
    }

    /// The iterations a progress file says are done; 0 while there is none.
    pub fn read(path: &Path) -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Observer for ProgressFile {
    fn iterations(&mut self, done: u64) {
        if self.written.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.written = Some(Instant::now());
        // Progress is a courtesy: a file that cannot be written leaves the bar where it was.
        let _ = write_atomic(&self.path, done.to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_the_first_count_then_one_at_most_every_quarter_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress");
        assert_eq!(ProgressFile::read(&path), 0);
        let mut f = ProgressFile::new(&path);
        f.iterations(3);
        assert_eq!(ProgressFile::read(&path), 3);
        // Within the quarter second nothing is rewritten.
        f.iterations(4);
        assert_eq!(ProgressFile::read(&path), 3);
        std::thread::sleep(EVERY + Duration::from_millis(20));
        f.iterations(9);
        assert_eq!(ProgressFile::read(&path), 9);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "nothing but the progress file is left");
    }
}
