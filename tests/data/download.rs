//! The download path against a local HTTP server on 127.0.0.1 (nothing else is ever
//! contacted): fetch, verify, unpack and load; a wrong checksum, a 404 and a cut transfer
//! are reported clearly and leave nothing behind.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use asgd_sim::data::download::{RemoteFile, Unpack};
use asgd_sim::data::{DownloadSpec, Split, cifar10, download, mnist};
use flate2::{Compression, write::GzEncoder};
use md5::{Digest, Md5};

use super::{cifar_records, gz, idx_images, idx_labels};
struct Reply {
    status: u16,
    body: Vec<u8>,
    /// Content-Length to announce, when not the body's (to cut a transfer short).
    announce: Option<usize>,
}

/// Serves `routes` on 127.0.0.1 to at most `connections` connections, then stops; gives up
/// after 20 s without one. Returns the base URL and the thread, which yields the paths asked.
fn serve(
    routes: HashMap<String, Reply>,
    connections: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/files/", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut asked = vec![];
        let deadline = Instant::now() + Duration::from_secs(20);
        while asked.len() < connections && Instant::now() < deadline {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut head = vec![];
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let missing = Reply {
                status: 404,
                body: b"not found".to_vec(),
                announce: None,
            };
            let reply = routes.get(&path).unwrap_or(&missing);
            let len = reply.announce.unwrap_or(reply.body.len());
            let _ = write!(
                stream,
                "HTTP/1.1 {} X\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                reply.status
            );
            let _ = stream.write_all(&reply.body);
            asked.push(path);
        }
        asked
    });
    (base, handle)
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A CIFAR-10 archive as the official one is laid out, with a few records per file.
fn cifar_archive() -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("cifar-10-batches-bin/{name}"), data)
            .unwrap();
    };
    for (i, name) in cifar10::TRAIN_FILES.iter().enumerate() {
        add(name, &cifar_records(2, i as u8));
    }
    add(cifar10::TEST_FILE, &cifar_records(1, 0));
    add("batches.meta.txt", b"airplane\n");
    tar.into_inner().unwrap().finish().unwrap()
}

fn cifar_spec(base: &str, md5: &str) -> DownloadSpec {
    DownloadSpec {
        name: "cifar10".into(),
        base_url: base.into(),
        files: vec![RemoteFile {
            name: "cifar-10-binary.tar.gz".into(),
            md5: md5.into(),
        }],
        unpack: Unpack::TarGz {
            root: cifar10::DIR_NAME.into(),
        },
        target: cifar10::DIR_NAME.into(),
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[derive(Default)]
struct Tally {
    bytes: u64,
    total: Option<u64>,
    verified: usize,
}

impl asgd_sim::data::DownloadObserver for Tally {
    fn start(&mut self, _url: &str, total: Option<u64>) {
        self.total = total;
    }
    fn progress(&mut self, bytes: u64) {
        self.bytes += bytes;
    }
    fn verified(&mut self, _url: &str) {
        self.verified += 1;
    }
}

#[test]
fn cifar_download_verifies_unpacks_and_loads() {
    let archive = cifar_archive();
    let md5 = md5_hex(&archive);
    let len = archive.len() as u64;
    let route = Reply {
        status: 200,
        body: archive,
        announce: None,
    };
    let (base, server) = serve(
        HashMap::from([("/files/cifar-10-binary.tar.gz".into(), route)]),
        1,
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut tally = Tally::default();
    let got = download(&cifar_spec(&base, &md5), &data, &mut tally).unwrap();
    assert_eq!(
        server.join().unwrap(),
        vec!["/files/cifar-10-binary.tar.gz"]
    );
    assert!(got.fetched);
    assert_eq!(got.path, data.join("cifar-10-batches-bin"));
    assert_eq!(
        (tally.bytes, tally.total, tally.verified),
        (len, Some(len), 1)
    );
    // Only the unpacked folder is left: no archive, no staging folder.
    assert_eq!(entries(&data), vec!["cifar-10-batches-bin"]);
    let d = cifar10::load(&got.path).unwrap();
    assert_eq!((d.len(Split::Train), d.len(Split::Test)), (10, 1));
    // Present already: nothing is fetched (the server is gone).
    let again = download(&cifar_spec(&base, &md5), &data, &mut ()).unwrap();
    assert!(!again.fetched);
}

#[test]
fn download_failures_are_clear_and_leave_nothing() {
    let archive = cifar_archive();
    let md5 = md5_hex(&archive);
    let short = Reply {
        status: 200,
        body: archive[..100].to_vec(),
        announce: Some(archive.len()),
    };
    let routes = HashMap::from([
        (
            "/files/cifar-10-binary.tar.gz".to_string(),
            Reply {
                status: 200,
                body: archive,
                announce: None,
            },
        ),
        ("/files/short/cifar-10-binary.tar.gz".to_string(), short),
    ]);
    let (base, server) = serve(routes, 3);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let wrong = "0123456789abcdef0123456789abcdef";
    let e = download(&cifar_spec(&base, wrong), &data, &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "{base}cifar-10-binary.tar.gz: MD5 {md5} does not match the published {wrong}"
        )),
        "{e}"
    );
    assert_eq!(entries(&data), Vec::<String>::new());

    let e = download(
        &cifar_spec(&format!("{base}missing/"), &md5),
        &data,
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains(&format!(
            "GET {base}missing/cifar-10-binary.tar.gz: HTTP status 404"
        )),
        "{e}"
    );
    assert_eq!(entries(&data), Vec::<String>::new());

    let e = download(&cifar_spec(&format!("{base}short/"), &md5), &data, &mut ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "GET {base}short/cifar-10-binary.tar.gz: the transfer broke off"
        )),
        "{e}"
    );
    assert_eq!(entries(&data), Vec::<String>::new());
    assert_eq!(server.join().unwrap().len(), 3);
}

#[test]
fn a_download_without_a_network_leaves_no_folder_says_its_cause_once_and_how_to_get_it_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("sets");
    // A closed port on 127.0.0.1 stands in for a machine without a network.
    let e = download(&cifar_spec("http://127.0.0.1:9/", "00"), &dir, &mut ()).unwrap_err();
    assert!(
        !tmp.path().join("data").exists(),
        "the folders it made are gone"
    );
    // The cause is in the message once, and not again as a source to print after it.
    assert!(std::error::Error::source(&e).is_none());
    let text = e.to_string();
    assert_eq!(text.matches("GET http://127.0.0.1:9/").count(), 1, "{text}");
    let at = dir.display().to_string();
    for needle in [
        "To get it by hand",
        "http://127.0.0.1:9/cifar-10-binary.tar.gz  (MD5 00)",
        &format!("tar -xzf cifar-10-binary.tar.gz -C {at}"),
        &format!("{at}/cifar-10-batches-bin/"),
        &format!("data get cifar10 --dir {at}"),
        "kind = \"cifar10\"",
        &format!("path = \"{at}/cifar-10-batches-bin\""),
    ] {
        assert!(text.contains(needle), "`{needle}` in {text}");
    }
}

#[test]
fn mnist_download_keeps_the_gz_files_the_loader_reads() {
    let files = [
        (mnist::TRAIN_IMAGES, idx_images(0x803, 2, 28, 28, 2 * 784)),
        (mnist::TRAIN_LABELS, idx_labels(&[3, 4])),
        (mnist::TEST_IMAGES, idx_images(0x803, 1, 28, 28, 784)),
        (mnist::TEST_LABELS, idx_labels(&[7])),
    ];
    let mut routes = HashMap::new();
    let mut remote = vec![];
    for (name, bytes) in files {
        let body = gz(&bytes);
        remote.push(RemoteFile {
            name: format!("{name}.gz"),
            md5: md5_hex(&body),
        });
        routes.insert(
            format!("/files/{name}.gz"),
            Reply {
                status: 200,
                body,
                announce: None,
            },
        );
    }
    let (base, server) = serve(routes, 4);
    let mut spec = DownloadSpec::official("mnist").unwrap();
    assert_eq!(
        spec.files
            .iter()
            .map(|f| f.name.clone())
            .collect::<Vec<_>>(),
        remote.iter().map(|f| f.name.clone()).collect::<Vec<_>>()
    );
    spec.base_url = base;
    spec.files = remote;
    let tmp = tempfile::tempdir().unwrap();
    let got = download(&spec, tmp.path(), &mut ()).unwrap();
    assert_eq!(server.join().unwrap().len(), 4);
    assert_eq!(entries(tmp.path()), vec!["mnist"]);
    let d = mnist::load(&got.path).unwrap();
    assert_eq!(d.labels(Split::Train), vec![3, 4]);
    assert_eq!(d.labels(Split::Test), vec![7]);
}

#[test]
fn official_specs_carry_the_published_checksums() {
    let c = DownloadSpec::official("cifar10").unwrap();
    assert_eq!(c.base_url, "https://www.cs.toronto.edu/~kriz/");
    assert_eq!(c.files[0].md5, "c32a1d4ab5d03f1284b67883e8d87530");
    let m = DownloadSpec::official("mnist").unwrap();
    assert_eq!(m.files[0].md5, "f68b3c2dcbeaaa9fbdd348bbdeb94873");
    let e = DownloadSpec::official("imagenet").unwrap_err().to_string();
    assert!(
        e.contains("unknown data set `imagenet`; known: cifar10, mnist"),
        "{e}"
    );
}
