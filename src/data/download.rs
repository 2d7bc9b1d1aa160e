//! Fetching the real data sets: download the official files into a data directory, check
//! each against its published MD5, unpack, and only then move the result to its final name.
//! The entry point is [`get`] (`asgd-sim data get cifar10|mnist [--dir DIR]`); [`download`]
//! does the same from an explicit [`DownloadSpec`], so tests can point it at a local server.
//!
//! Layout under the data directory `DIR` (default [`DEFAULT_DIR`]):
//! - `cifar10`: `DIR/cifar-10-batches-bin/` as the archive unpacks it (the loader's
//!   [`crate::data::cifar10::load`] directory); the archive itself is not kept.
//! - `mnist`: `DIR/mnist/` with the four `.gz` files as downloaded
//!   ([`crate::data::mnist::load`] reads them compressed).
//!
//! Atomicity: everything is written under `DIR/.NAME.partial/` and the finished directory is
//! renamed into place in one step, so the final name either holds verified, complete data
//! or does not exist. A failure removes the partial directory; one left by a killed process
//! is removed by the next attempt. Two downloads of the same set into the same directory at
//! the same time are not supported. This module must never write to the final name before
//! every checksum has passed, nor contact any address but the spec's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};
use thiserror::Error;

/// Where `asgd-sim data get` puts data sets when no `--dir` is given.
pub const DEFAULT_DIR: &str = "data";
/// The data sets [`DownloadSpec::official`] knows.
pub const NAMES: [&str; 2] = ["cifar10", "mnist"];

/// A download that failed. Every variant is fatal, and none leaves files behind.
#[derive(Debug, Error)]
pub enum DownloadError {
    /// Not a data set [`DownloadSpec::official`] knows.
    #[error("unknown data set `{name}`; known: {}", NAMES.join(", "))]
    UnknownName { name: String },
    /// The server answered with a status other than 200.
    #[error("GET {url}: HTTP status {status}; expected 200 (is the URL right?)")]
    Http { url: String, status: u16 },
    /// No answer: the host was not found, refused, timed out or dropped the connection.
    #[error("GET {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The body broke off (the connection dropped or stalled). Nothing was kept.
    #[error("GET {url}: the transfer broke off ({source}); nothing was kept, retry")]
    Transfer { url: String, source: std::io::Error },
    /// The file arrived but its MD5 is not the published one: a corrupted or changed file,
    /// or a mirror serving something else. Nothing was kept.
    #[error(
        "{url}: MD5 {found} does not match the published {expected}; nothing was kept \
         (retry; if it persists the mirror serves a different file)"
    )]
    Checksum {
        url: String,
        expected: String,
        found: String,
    },
    /// A `.tar.gz` that cannot be unpacked, or that lacks the directory it must hold.
    #[error("{}: {problem}", path.display())]
    Archive { path: PathBuf, problem: String },
    /// The files could not be fetched (no network, a server that refuses, a bad mirror);
    /// `by_hand` says how to fetch them elsewhere and where to put them.
    #[error("{error}\n{by_hand}")]
    Unfetched {
        error: Box<DownloadError>,
        by_hand: String,
    },
    /// The data directory could not be created or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One file to fetch: `base_url + name`, with its expected MD5 (lowercase hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    pub md5: String,
}

/// What to do with the verified files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unpack {
    /// Keep them as they are; the folder holding them becomes `target`.
    Keep,
    /// Each file is a gzip-compressed tar holding the directory `root`, which becomes
    /// `target`; the archive is deleted. Only regular files and directories are unpacked,
    /// and only inside the staging folder.
    TarGz { root: String },
}

/// Everything a download needs; [`DownloadSpec::official`] gives the real ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadSpec {
    /// Names the staging folder and messages.
    pub name: String,
    /// Prefix of every file's URL, ending in `/`.
    pub base_url: String,
    pub files: Vec<RemoteFile>,
    pub unpack: Unpack,
    /// The folder under the data directory that holds the result.
    pub target: String,
}

impl DownloadSpec {
    /// The official source of `cifar10` or `mnist`.
    pub fn official(name: &str) -> Result<Self, DownloadError> {
        let file = |name: &str, md5: &str| RemoteFile {
            name: name.into(),
            md5: md5.into(),
        };
        match name {
            // The binary version as the dataset's authors publish it; the MD5 is the one on
            // https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version").
            // (torchvision's datasets/cifar.py carries the python version's,
            // c58f30108f718f92721af3b95e74349a, a different archive.)
            "cifar10" => Ok(DownloadSpec {
                name: name.into(),
                base_url: "https://www.cs.toronto.edu/~kriz/".into(),
                files: vec![file(
                    "cifar-10-binary.tar.gz",
                    "c32a1d4ab5d03f1284b67883e8d87530",
                )],
                unpack: Unpack::TarGz {
                    root: super::cifar10::DIR_NAME.into(),
                },
                target: super::cifar10::DIR_NAME.into(),
            }),
            // torchvision's mirror and MD5s, from torchvision/datasets/mnist.py
            // (`MNIST.mirrors`, `MNIST.resources`); the original yann.lecun.com host no
            // longer serves the files reliably.
            "mnist" => Ok(DownloadSpec {
                name: name.into(),
                base_url: "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
                files: vec![
                    file(
                        "train-images-idx3-ubyte.gz",
                        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    ),
                    file(
                        "train-labels-idx1-ubyte.gz",
                        "d53e105ee54ea40749a09fcbcd1e9432",
                    ),
                    file(
                        "t10k-images-idx3-ubyte.gz",
                        "9fb629c4189551a2d022fa330f9573f3",
                    ),
                    file(
                        "t10k-labels-idx1-ubyte.gz",
                        "ec29112dd5afa0611ce80d1b7f02629c",
                    ),
                ],
                unpack: Unpack::Keep,
                target: "mnist".into(),
            }),
            _ => Err(DownloadError::UnknownName { name: name.into() }),
        }
    }

    /// How to fetch the files on another machine and place them in `dir` so that
    /// [`download`] (and a scenario's `path`) finds them without a network.
    pub fn by_hand(&self, dir: &Path) -> String {
        let target = dir.join(&self.target);
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("  {}{}  (MD5 {})", self.base_url, f.name, f.md5))
            .collect();
        let place = match &self.unpack {
            Unpack::TarGz { .. } => {
                let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
                let dir = dir.display();
                format!(
                    "then unpack it with `mkdir -p {dir} && tar -xzf {} -C {dir}`, which makes {}/",
                    names.join(" "),
                    target.display()
                )
            }
            Unpack::Keep => format!("then put them, as downloaded, in {}/", target.display()),
        };
        format!(
            "To get it by hand: on a machine with a network, download\n{}\n{place}. \
             `asgd-sim data get {} --dir {}` then finds it there, and a scenario reads it with \
             `[workload.dataset] kind = \"{}\"` and `path = \"{}\"`.",
            files.join("\n"),
            self.name,
            dir.display(),
            self.name,
            target.display()
        )
    }
}

/// Hears how a download goes, e.g. to draw a progress bar. Every method does nothing by
/// default; `()` is the observer that ignores everything.
pub trait DownloadObserver {
    /// A file starts; `total` is its size in bytes when the server says.
    fn start(&mut self, _url: &str, _total: Option<u64>) {}
    /// `bytes` more bytes of the current file arrived.
    fn progress(&mut self, _bytes: u64) {}
    /// The current file arrived and its checksum passed.
    fn verified(&mut self, _url: &str) {}
    /// Unpacking starts.
    fn unpacking(&mut self, _path: &Path) {}
}

impl DownloadObserver for () {}

/// The result of a download.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Downloaded {
    /// The directory the data set's loader reads.
    pub path: PathBuf,
    /// False when `path` already existed and nothing was fetched.
    pub fetched: bool,
}

/// Downloads the official `cifar10` or `mnist` into `dir` (created if missing), unless it is
/// already there. The one entry point for `asgd-sim data get NAME [--dir DIR]`.
pub fn get(
    name: &str,
    dir: &Path,
    observer: &mut dyn DownloadObserver,
) -> Result<Downloaded, DownloadError> {
    download(&DownloadSpec::official(name)?, dir, observer)
}

/// Downloads, verifies and unpacks what `spec` describes into `dir/spec.target`; does
/// nothing when that directory already exists.
pub fn download(
    spec: &DownloadSpec,
    dir: &Path,
    observer: &mut dyn DownloadObserver,
) -> Result<Downloaded, DownloadError> {
    let target = dir.join(&spec.target);
    if target.is_dir() {
        return Ok(Downloaded {
            path: target,
            fetched: false,
        });
    }
    // The folders this call creates, innermost first, removed again if it fails.
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    let result = fetch_into(spec, dir, &target, observer);
    if result.is_err() {
        for folder in &created {
            let _ = std::fs::remove_dir(folder);
        }
    }
    result.map_err(|error| match error {
        DownloadError::Http { .. }
        | DownloadError::Transport { .. }
        | DownloadError::Transfer { .. }
        | DownloadError::Checksum { .. } => DownloadError::Unfetched {
            error: Box::new(error),
            by_hand: spec.by_hand(dir),
        },
        other => other,
    })
}

/// [`download`]'s work, once `target` is known to be missing.
fn fetch_into(
    spec: &DownloadSpec,
    dir: &Path,
    target: &Path,
    observer: &mut dyn DownloadObserver,
) -> Result<Downloaded, DownloadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DownloadError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let partial = dir.join(format!(".{}.partial", spec.name));
    let staging = Staging::create(partial.clone()).map_err(io(&partial))?;
    let agent = agent();
    for file in &spec.files {
        fetch(&agent, spec, file, &staging.0, observer)?;
    }
    let done = match &spec.unpack {
        Unpack::Keep => staging.0.clone(),
        Unpack::TarGz { root } => {
            let out = staging.0.join("unpacked");
            for file in &spec.files {
                let archive = staging.0.join(&file.name);
                observer.unpacking(&archive);
                untar_gz(&archive, &out)?;
                std::fs::remove_file(&archive).map_err(io(&archive))?;
            }
            let root_dir = out.join(root);
            if !root_dir.is_dir() {
                let archives: Vec<&str> = spec.files.iter().map(|f| f.name.as_str()).collect();
                return Err(DownloadError::Archive {
                    path: archives.join(", ").into(),
                    problem: format!("the archive holds no directory `{root}/`"),
                });
            }
            root_dir
        }
    };
    std::fs::rename(&done, target).map_err(io(target))?;
    drop(staging);
    Ok(Downloaded {
        path: target.to_path_buf(),
        fetched: true,
    })
}

/// The staging folder, removed with everything in it when dropped.
struct Staging(PathBuf);

impl Staging {
    fn create(path: PathBuf) -> std::io::Result<Self> {
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir(&path)?;
        Ok(Staging(path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Already renamed into place (Unpack::Keep), or best effort after a failure.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // The checksums are of the files as stored; a transparently decompressed body would
        // never match.
        .accept_encoding("identity")
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Fetches one file into `folder`, hashing as it goes, and checks the hash.
fn fetch(
    agent: &ureq::Agent,
    spec: &DownloadSpec,
    file: &RemoteFile,
    folder: &Path,
    observer: &mut dyn DownloadObserver,
) -> Result<(), DownloadError> {
    let url = format!("{}{}", spec.base_url, file.name);
    let path = folder.join(&file.name);
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|source| DownloadError::Transport {
            url: url.clone(),
            source: Box::new(source),
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(DownloadError::Http { url, status });
    }
    observer.start(&url, response.body().content_length());
    let transfer = |source| DownloadError::Transfer {
        url: url.clone(),
        source,
    };
    let write = |source| DownloadError::Io {
        path: path.clone(),
        source,
    };
    let mut out = std::fs::File::create(&path).map_err(write)?;
    let mut body = response.body_mut().as_reader();
    let mut hash = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(transfer)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(write)?;
        observer.progress(n as u64);
    }
    out.sync_all().map_err(write)?;
    let found: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if !found.eq_ignore_ascii_case(&file.md5) {
        return Err(DownloadError::Checksum {
            url,
            expected: file.md5.to_ascii_lowercase(),
            found,
        });
    }
    observer.verified(&url);
    Ok(())
}

/// Unpacks the regular files and directories of a `.tar.gz` into `out`.
fn untar_gz(archive: &Path, out: &Path) -> Result<(), DownloadError> {
    let bad = |problem: String| DownloadError::Archive {
        path: archive.into(),
        problem,
    };
    let file = std::fs::File::open(archive).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(out).map_err(|e| bad(e.to_string()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a .tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("not a .tar.gz: {e}")))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let inside = entry
            .unpack_in(out)
            .map_err(|e| bad(format!("unpacking `{name}`: {e}")))?;
        if !inside {
            return Err(bad(format!(
                "entry `{name}` points outside the archive's folder"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_replaces_a_stale_folder_and_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.partial");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("half-written"), b"...").unwrap();
        let staging = Staging::create(path.clone()).unwrap();
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
        drop(staging);
        assert!(!path.exists());
    }

    #[test]
    fn present_target_is_not_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnist")).unwrap();
        let mut spec = DownloadSpec::official("mnist").unwrap();
        // A closed port: reaching out at all would fail the test.
        spec.base_url = "http://127.0.0.1:9/".into();
        let got = download(&spec, dir.path(), &mut ()).unwrap();
        assert!(!got.fetched && got.path == dir.path().join("mnist"));
    }
}
