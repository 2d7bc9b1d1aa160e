//! The data module on real files: each loader on small files written here, every bad input
//! with its file and offset or line, the synthetic generators (determinism, shapes) and
//! batch gathering; `data/learnability.rs` measures how learnable the synthetic sets are,
//! `data/download.rs` runs the download path against a local HTTP server.

#[path = "data/download.rs"]
mod downloading;
#[path = "data/learnability.rs"]
mod learnability;

use std::io::Write;
use std::path::Path;

use asgd_sim::data::{BatchInputs, Dataset, InputKind, Split, cifar10, libsvm, mnist, synthetic};
use flate2::{Compression, write::GzEncoder};

// ---------- CIFAR-10 ----------

/// `n` records with labels `first, first + 1, ...` (mod 10); record `r`'s pixels are
/// `(r + channel) as u8` so that every byte can be traced.
fn cifar_records(n: usize, first: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for r in 0..n {
        out.push((first + r as u8) % 10);
        for c in 0..3 {
            out.extend(std::iter::repeat_n((r * 10 + c) as u8, 1024));
        }
    }
    out
}

fn write_cifar(dir: &Path) {
    for (i, name) in cifar10::TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), cifar_records(2, 2 * i as u8)).unwrap();
    }
    std::fs::write(dir.join(cifar10::TEST_FILE), cifar_records(3, 7)).unwrap();
}

#[test]
fn cifar_loads_records_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path());
    let d = cifar10::load(dir.path()).unwrap();
    assert_eq!(d.classes(), 10);
    assert_eq!(d.class_names()[9], "truck");
    assert_eq!((d.len(Split::Train), d.len(Split::Test)), (10, 3));
    assert_eq!(d.labels(Split::Train), (0..10).collect::<Vec<u32>>());
    assert_eq!(d.labels(Split::Test), vec![7, 8, 9]);
    let img = d.raw_image(Split::Test, 2).unwrap();
    assert_eq!(
        (img[0], img[1024], img[2048], img.len()),
        (20, 21, 22, 3072)
    );
}

#[test]
fn cifar_bad_files_name_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar(dir.path());
    let test = dir.path().join(cifar10::TEST_FILE);
    let err = |dir: &Path| cifar10::load(dir).unwrap_err().to_string();

    let mut bad = cifar_records(3, 0);
    bad[2 * 3073] = 10;
    std::fs::write(&test, &bad).unwrap();
    let e = err(dir.path());
    assert!(
        e.contains("test_batch.bin: byte offset 6146 (record 2): label 10, allowed 0-9"),
        "{e}"
    );

    std::fs::write(&test, &bad[..3073 + 5]).unwrap();
    let e = err(dir.path());
    assert!(
        e.contains("test_batch.bin: 3078 bytes is not a positive multiple of the 3073"),
        "{e}"
    );
    std::fs::write(&test, b"").unwrap();
    assert!(err(dir.path()).contains("test_batch.bin: 0 bytes"));

    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let e = err(dir.path());
    assert!(e.contains("data_batch_4.bin: missing"), "{e}");
}

// ---------- MNIST ----------

fn idx_images(magic: u32, n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut out: Vec<u8> = [magic, n, rows, cols]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    out.extend((0..pixels).map(|i| (i % 251) as u8));
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = [0x801u32, labels.len() as u32]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    out.extend_from_slice(labels);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Train: 3 images, test: 2, 28 x 28; train files gzipped when `compress`.
fn write_mnist(dir: &Path, compress: bool) {
    let train = [
        (mnist::TRAIN_IMAGES, idx_images(0x803, 3, 28, 28, 3 * 784)),
        (mnist::TRAIN_LABELS, idx_labels(&[5, 0, 9])),
    ];
    for (name, bytes) in train {
        match compress {
            true => std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap(),
            false => std::fs::write(dir.join(name), bytes).unwrap(),
        }
    }
    std::fs::write(
        dir.join(mnist::TEST_IMAGES),
        idx_images(0x803, 2, 28, 28, 2 * 784),
    )
    .unwrap();
    std::fs::write(dir.join(mnist::TEST_LABELS), idx_labels(&[1, 2])).unwrap();
}

#[test]
fn mnist_loads_plain_and_gz() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_mnist(dir.path(), compress);
        let d = mnist::load(dir.path()).unwrap();
        assert_eq!(
            (d.len(Split::Train), d.len(Split::Test), d.classes()),
            (3, 2, 10)
        );
        assert_eq!(d.labels(Split::Train), vec![5, 0, 9]);
        let InputKind::Dense(shape) = d.input() else {
            panic!("dense expected")
        };
        assert_eq!((shape.channels, shape.height, shape.width), (1, 28, 28));
        assert_eq!(d.raw_image(Split::Train, 1).unwrap()[0], (784 % 251) as u8);
    }
}

#[test]
fn mnist_bad_files_name_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), false);
    let p = dir.path();
    let err = || mnist::load(p).unwrap_err().to_string();
    let images = p.join(mnist::TEST_IMAGES);
    let labels = p.join(mnist::TEST_LABELS);

    std::fs::write(&images, idx_images(0x801, 2, 28, 28, 2 * 784)).unwrap();
    let e = err();
    assert!(
        e.contains(
            "t10k-images-idx3-ubyte: byte offset 0: magic number 0x00000801, expected 0x00000803"
        ),
        "{e}"
    );

    std::fs::write(&images, idx_images(0x803, 2, 28, 28, 2 * 784 - 1)).unwrap();
    let e = err();
    assert!(
        e.contains("t10k-images-idx3-ubyte: the header announces 2 images of 28x28 = 1568 bytes"),
        "{e}"
    );
    assert!(e.contains("the file has 1567"), "{e}");

    std::fs::write(&images, idx_images(0x803, 3, 28, 28, 3 * 784)).unwrap();
    let e = err();
    assert!(
        e.contains("holds 3 images but") && e.contains("holds 2 labels"),
        "{e}"
    );

    std::fs::write(&images, idx_images(0x803, 2, 28, 28, 2 * 784)).unwrap();
    std::fs::write(&labels, idx_labels(&[1, 12])).unwrap();
    let e = err();
    assert!(
        e.contains("t10k-labels-idx1-ubyte: byte offset 9: label 12, allowed 0-9"),
        "{e}"
    );

    std::fs::write(&labels, [0u8, 0, 8]).unwrap();
    assert!(err().contains("3 bytes, shorter than the 8-byte IDX header"));

    std::fs::remove_file(&labels).unwrap();
    let e = err();
    assert!(
        e.contains("t10k-labels-idx1-ubyte: missing (nor is there a .gz of it)"),
        "{e}"
    );
}

// ---------- LIBSVM ----------

#[test]
fn libsvm_maps_features_to_token_bags_and_relabels_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("news.train"), dir.path().join("news.test"));
    std::fs::write(
        &train,
        "# id:count\n7 1:2 4:1\n-3 2:0.25 3:0\n7 5:1 # note\n\n",
    )
    .unwrap();
    std::fs::write(&test, "12 1:1 9:3\n").unwrap();
    let d = libsvm::load(&train, &test).unwrap();
    assert_eq!(d.name(), "news");
    assert_eq!(d.input(), InputKind::Tokens { vocabulary: 9 });
    assert_eq!(d.class_names(), ["-3", "7", "12"]);
    assert_eq!(d.labels(Split::Train), vec![1, 0, 1]);
    assert_eq!(d.labels(Split::Test), vec![2]);
    assert_eq!(d.tokens(Split::Train, 0).unwrap(), [0, 0, 3]);
    assert_eq!(d.tokens(Split::Train, 1).unwrap(), [1]);
    assert_eq!(d.tokens(Split::Test, 0).unwrap(), [0, 8, 8, 8]);
}

#[test]
fn libsvm_bad_lines_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (dir.path().join("a.svm"), dir.path().join("b.svm"));
    std::fs::write(&test, "1 1:1\n").unwrap();
    let cases = [
        ("1 1:1\n2 3:1 3:2\n", "a.svm:2:7: index 3 does not follow 3"),
        ("# c\n1 0:1\n", "a.svm:2:3: index 0 is not allowed"),
        (
            "one 1:1\n",
            "a.svm:1:1: label `one` is not an integer class",
        ),
        ("1 1:1 2-1\n", "a.svm:1:7: `2-1`: expected index:value"),
        (
            "1 x:1\n",
            "a.svm:1:3: `x:1`: index `x` is not a whole number",
        ),
        ("", "a.svm: no samples"),
    ];
    for (text, want) in cases {
        std::fs::write(&train, text).unwrap();
        let e = libsvm::load(&train, &test).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

// ---------- synthetic sets and batches ----------

fn dense(d: &Dataset, split: Split) -> (Vec<f32>, Vec<u32>) {
    let all: Vec<usize> = (0..d.len(split)).collect();
    let b = d.gather(split, &all);
    match b.inputs {
        BatchInputs::Dense { x, .. } => (x, b.labels),
        BatchInputs::Tokens { .. } => panic!("dense expected"),
    }
}

/// An image set of 300 + 50 samples of seed 42 from `make`, checked: the same bytes again from
/// the same seed, others from another; 10 classes, all drawn; the samples of a larger set
/// start with it.
fn same_set_from_the_same_seed_and_a_prefix_of_a_larger_one(
    make: fn(usize, usize, u64) -> Result<Dataset, synthetic::SyntheticError>,
) -> Dataset {
    let a = make(300, 50, 42).unwrap();
    let b = make(300, 50, 42).unwrap();
    let c = make(300, 50, 43).unwrap();
    assert_eq!(dense(&a, Split::Train), dense(&b, Split::Train));
    assert_ne!(dense(&a, Split::Train).0, dense(&c, Split::Train).0);
    assert_eq!(a.input(), InputKind::Dense(synthetic::IMAGE_SHAPE));
    assert_eq!(
        (a.len(Split::Train), a.len(Split::Test), a.classes()),
        (300, 50, 10)
    );
    let mut counts = [0; 10];
    a.labels(Split::Train)
        .iter()
        .for_each(|&l| counts[l as usize] += 1);
    assert!(counts.iter().all(|&n| n > 10), "{counts:?}");
    let big = make(400, 60, 42).unwrap();
    assert_eq!(
        big.raw_image(Split::Train, 299),
        a.raw_image(Split::Train, 299)
    );
    assert_eq!(big.raw_image(Split::Test, 49), a.raw_image(Split::Test, 49));
    a
}

#[test]
fn synthetic_sets_are_deterministic_with_the_right_shapes() {
    let a = same_set_from_the_same_seed_and_a_prefix_of_a_larger_one(synthetic::images);
    // Standardised over the train split: about zero mean and unit variance per channel.
    let (x, _) = dense(&a, Split::Train);
    for c in 0..3 {
        let v: Vec<f64> = x
            .chunks(1024)
            .skip(c)
            .step_by(3)
            .flatten()
            .map(|&v| v as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            mean.abs() < 1e-3 && (var - 1.0).abs() < 1e-3,
            "channel {c}: {mean} {var}"
        );
    }

    let t = synthetic::text(500, 100, 5_000, 7).unwrap();
    assert_eq!(t.input(), InputKind::Tokens { vocabulary: 5_000 });
    assert_eq!(
        (t.len(Split::Train), t.len(Split::Test), t.classes()),
        (500, 100, 20)
    );
    let bag = |d: &Dataset, i| d.tokens(Split::Train, i).unwrap().to_vec();
    let t2 = synthetic::text(500, 100, 5_000, 7).unwrap();
    assert!((0..500).all(|i| bag(&t, i) == bag(&t2, i)));
    let lens: Vec<usize> = (0..500).map(|i| bag(&t, i).len()).collect();
    assert!(lens.iter().all(|&n| (20..=60).contains(&n)));
    let mean = lens.iter().sum::<usize>() as f64 / 500.0;
    assert!((mean - 40.0).abs() < 2.0, "mean length {mean}");
    assert!(t.labels(Split::Test).iter().all(|&l| l < 20));
}

/// The object set is a pure function of its sizes and seed, like the image set, and its
/// bytes are pinned: the calibration of the paper-lr experiment (README) holds for these
/// images only.
#[test]
fn synthetic_objects_are_deterministic_pinned_and_prefixes_of_larger_sets() {
    let a = same_set_from_the_same_seed_and_a_prefix_of_a_larger_one(synthetic::objects);
    // Not the image set's samples under another name.
    let images = synthetic::images(300, 50, 42).unwrap();
    assert_ne!(
        images.raw_image(Split::Train, 0),
        a.raw_image(Split::Train, 0)
    );
    // FNV-1a over the first 16 training images and their labels.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for i in 0..16 {
        let bytes = a.raw_image(Split::Train, i).unwrap().iter().copied();
        for byte in bytes.chain([a.labels(Split::Train)[i] as u8]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    assert_eq!(hash, PINNED_OBJECTS, "{hash:#x}");
}

const PINNED_OBJECTS: u64 = 0xdbc3_70dc_ff0d_10c1;

#[test]
fn gather_follows_the_indices() {
    let d = synthetic::images(20, 5, 1).unwrap();
    let b = d.gather(Split::Train, &[7, 3, 7]);
    assert_eq!(b.len(), 3);
    let l = d.labels(Split::Train);
    assert_eq!(b.labels, vec![l[7], l[3], l[7]]);
    let BatchInputs::Dense { x, sample_len } = b.inputs else {
        panic!("dense expected")
    };
    assert_eq!((sample_len, x.len()), (3072, 3 * 3072));
    assert_eq!(x[..3072], x[2 * 3072..]);
    let stats = d.channel_stats();
    let raw = d.raw_image(Split::Train, 3).unwrap();
    for k in [0, 1500, 3071] {
        let s = stats[k / 1024];
        let want = (raw[k] as f32 / 255.0 - s.mean) / s.std;
        assert!((x[3072 + k] - want).abs() < 1e-6);
    }
    let t = synthetic::text(10, 0, 1_000, 1).unwrap();
    let b = t.gather(Split::Train, &[4, 0]);
    let BatchInputs::Tokens { offsets, ids } = b.inputs else {
        panic!("tokens expected")
    };
    let (b4, b0) = (
        t.tokens(Split::Train, 4).unwrap(),
        t.tokens(Split::Train, 0).unwrap(),
    );
    assert_eq!(
        offsets,
        vec![0, b4.len() as u32, (b4.len() + b0.len()) as u32]
    );
    assert_eq!(ids, [b4, b0].concat());
}
