//! Writing results so that a reader never sees a half-written one: files go to a temporary
//! name in the same directory and are renamed into place; a run directory is built as a hidden
//! sibling and renamed whole. A writer dropped before `commit` removes its temporary files.

use crate::input::{InputError, bad_flag};
use std::io;
use std::path::{Path, PathBuf};

/// A run directory being written.
pub struct OutputDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

/// Whether results can go to directory `target`, given to option `flag`: it, or else its
/// nearest existing parent, must be a directory. Checked before any work, so that a long run
/// does not end at a path it cannot write.
pub fn check_target(flag: &str, target: &Path) -> Result<(), InputError> {
    for p in target.ancestors() {
        if p.as_os_str().is_empty() {
            break;
        }
        if p.is_dir() {
            return Ok(());
        }
        if p.exists() {
            let message = if p == target {
                "exists and is not a directory".to_string()
            } else {
                format!("{} is not a directory", p.display())
            };
            return Err(bad_flag(flag, &target.display().to_string(), &message));
        }
    }
    Ok(())
}

impl OutputDir {
    /// Starts writing the directory `target` (created with its parents on commit).
    pub fn begin(target: &Path) -> io::Result<Self> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir(&staging)?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            committed: false,
        })
    }

    /// The hidden directory being filled, for files that must be read back before the commit.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> io::Result<()> {
        std::fs::write(self.staging.join(name), contents)
    }

    /// Replaces any previous directory at the target with the new one.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target)?;
        }
        std::fs::rename(&self.staging, &self.target)?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes a file atomically: to a temporary sibling, then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_directory_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("runs/x");
        {
            let out = OutputDir::begin(&target).unwrap();
            out.write("a.json", b"{}").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("runs")).unwrap().count(),
            0
        );
        let out = OutputDir::begin(&target).unwrap();
        out.write("a.json", b"{}").unwrap();
        out.commit().unwrap();
        assert!(target.join("a.json").exists());
    }
}
