//! What the processes of a run say to each other over TCP, and how it is framed: every message
//! is one [`Msg`], encoded by `postcard` (serde's compact binary format: integers as varints,
//! floats as their four little-endian bytes) behind a four-byte little-endian length. A
//! [`Conn`] is one such stream, with Nagle's algorithm off (a pull or an acknowledgement is a
//! few bytes that must leave at once) and its buffers kept between messages. Parameter and
//! gradient vectors travel as one run of little-endian bytes ([`floats`]), copied in and out
//! whole rather than one float at a time.

use super::super::runtime::LearnerEnd;
use crate::cluster::shard::Ledger;
use serde::{Deserialize, Serialize};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// The largest message accepted: a gigabyte, a quarter-billion parameters.
const MAX_FRAME: usize = 1 << 30;

/// Every message of the protocol. Rendezvous: each rank says `Hello` to the coordinator and
/// times `Ping`s against it; the coordinator sends learners the shards' addresses
/// (`Directory`), each rank says `Ready` when its links are up, and the coordinator says `Go`.
/// Then learners talk to shards (`Pull`/`Slice`, `Push`/`Applied`, `Snapshot`) and to the
/// coordinator (the calls of `real::control::Control`), and each rank hands in what it
/// measured (`LearnerDone`, `ShardDone`).
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Msg {
    Hello {
        rank: u32,
        world: u32,
        /// A digest of the scenario as this rank read it; every rank must have read the same.
        scenario: String,
        /// Where a shard listens for its learners.
        listen: Option<SocketAddr>,
    },
    Ping,
    /// The coordinator's clock, nanoseconds since it started.
    Pong {
        ns: u64,
    },
    /// The coordinator turns a rank away, saying why.
    Refused {
        why: String,
    },
    /// Every shard's address, in shard order; in a ring, every learner's, in learner order.
    Directory {
        shards: Vec<SocketAddr>,
        ring: Vec<SocketAddr>,
    },
    Ready,
    /// The run starts at `start_ns` on the coordinator's clock.
    Go {
        start_ns: u64,
    },
    /// A learner introduces itself to a shard.
    Learner {
        learner: u32,
    },
    Pull,
    Slice {
        version: u64,
        #[serde(with = "floats")]
        data: Vec<f32>,
    },
    Push {
        read_version: u64,
        /// When the learner sent it, on the run's clock.
        arrived: u64,
        #[serde(with = "floats")]
        data: Vec<f32>,
    },
    /// A push was applied from `started` to `finished` (the run's clock), or dropped;
    /// `arrived` is the push's.
    Applied {
        arrived: u64,
        started: u64,
        finished: u64,
        /// Dropped unapplied by a synchronous round (backup workers).
        dropped: bool,
        /// Its place in the round's learner order (synchronous SGD).
        slot: u32,
    },
    /// A ring peer's chunk to its successor: of step `step` of round `round`, handed to the
    /// link at `sent` on the run's clock.
    Chunk {
        round: u64,
        step: u32,
        sent: u64,
        #[serde(with = "floats")]
        data: Vec<f32>,
    },
    /// Keep the slice as it is now as epoch `epoch`'s.
    Snapshot {
        epoch: u64,
    },
    Claim,
    /// Learner `l` failed (`down`, giving back its claimed iteration with `unclaim`) or is
    /// back (`[faults]`).
    LearnerFault {
        l: usize,
        down: bool,
        unclaim: bool,
    },
    Claimed {
        ok: bool,
        epochs: u64,
    },
    Complete {
        k: u64,
    },
    Completed {
        from: u64,
        to: u64,
        done: u64,
        halted: bool,
    },
    WaitFor {
        iterations: u64,
    },
    Released {
        halted: bool,
        epochs: u64,
    },
    Fail {
        why: String,
    },
    Diverged,
    EpochEnd {
        epoch: u64,
        at_ns: u64,
        iterations: u64,
        /// The parameters then, where the learner holds them (a ring's); empty where the
        /// shards keep them.
        #[serde(with = "floats")]
        params: Vec<f32>,
    },
    LearnerDone {
        measured: LearnerEnd,
        /// Whole rounds done (synchronous SGD; 0 otherwise).
        rounds: u64,
        /// A ring learner's parameters at the end; empty otherwise.
        #[serde(with = "floats")]
        params: Vec<f32>,
        /// When the learner's last act ended, on the run's clock (the hand-in's own transfer,
        /// parameters and all, is no part of the run).
        finished_ns: u64,
    },
    /// The run is over (or must end): a shard closes its learners' links and hands in.
    Halt,
    ShardDone {
        #[serde(with = "floats")]
        slice: Vec<f32>,
        ledger: Ledger,
        busy_ns: u64,
        /// The slice at each epoch end a learner marked, by epoch.
        snapshots: Vec<Kept>,
        /// Its failures (`faults.shard_failures`), as they happened.
        faults: Vec<crate::outcome::ShardFaultRecord>,
    },
}

/// A shard's slice as it was at an epoch's end.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Kept {
    pub epoch: u64,
    #[serde(with = "floats")]
    pub slice: Vec<f32>,
}

/// A vector of floats as one byte string of their little-endian bytes.
mod floats {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        if cfg!(target_endian = "little") {
            // The floats' own bytes are their little-endian bytes: no copy.
            return s.serialize_bytes(bytemuck::cast_slice(v));
        }
        let mut bytes = vec![0u8; 4 * v.len()];
        for (b, x) in bytes.chunks_exact_mut(4).zip(v) {
            b.copy_from_slice(&x.to_le_bytes());
        }
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        d.deserialize_bytes(Floats)
    }

    struct Floats;

    impl Visitor<'_> for Floats {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("the little-endian bytes of 32-bit floats")
        }

        fn visit_bytes<E: Error>(self, b: &[u8]) -> Result<Vec<f32>, E> {
            if !b.len().is_multiple_of(4) {
                return Err(E::custom(format!("{} bytes are not whole floats", b.len())));
            }
            let mut v = vec![0f32; b.len() / 4];
            if cfg!(target_endian = "little") {
                bytemuck::cast_slice_mut(&mut v).copy_from_slice(b);
            } else {
                for (x, c) in v.iter_mut().zip(b.chunks_exact(4)) {
                    *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Ok(v)
        }
    }
}

impl Msg {
    /// The message's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "Hello",
            Msg::Ping => "Ping",
            Msg::Pong { .. } => "Pong",
            Msg::Refused { .. } => "Refused",
            Msg::Directory { .. } => "Directory",
            Msg::Ready => "Ready",
            Msg::Go { .. } => "Go",
            Msg::Learner { .. } => "Learner",
            Msg::Chunk { .. } => "Chunk",
            Msg::Pull => "Pull",
            Msg::Slice { .. } => "Slice",
            Msg::Push { .. } => "Push",
            Msg::Applied { .. } => "Applied",
            Msg::Snapshot { .. } => "Snapshot",
            Msg::Claim => "Claim",
            Msg::LearnerFault { .. } => "LearnerFault",
            Msg::Claimed { .. } => "Claimed",
            Msg::Complete { .. } => "Complete",
            Msg::Completed { .. } => "Completed",
            Msg::WaitFor { .. } => "WaitFor",
            Msg::Released { .. } => "Released",
            Msg::Fail { .. } => "Fail",
            Msg::Diverged => "Diverged",
            Msg::EpochEnd { .. } => "EpochEnd",
            Msg::LearnerDone { .. } => "LearnerDone",
            Msg::Halt => "Halt",
            Msg::ShardDone { .. } => "ShardDone",
        }
    }
}

/// One framed TCP stream.
pub(super) struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
    inb: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let reader = BufReader::with_capacity(1 << 16, stream.try_clone()?);
        Ok(Conn {
            stream,
            reader,
            out: vec![],
            inb: vec![],
        })
    }

    /// Connects to `addr`, trying again until `patience` has passed (the other side may not
    /// be listening yet).
    pub fn connect(addr: SocketAddr, patience: Duration) -> io::Result<Self> {
        let until = std::time::Instant::now() + patience;
        loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => return Conn::new(s),
                Err(e) if std::time::Instant::now() >= until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A second handle on the same stream (one thread reads while another writes).
    pub fn split(&self) -> io::Result<Conn> {
        Conn::new(self.stream.try_clone()?)
    }

    pub fn send(&mut self, msg: &Msg) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(&[0; 4]);
        let mut out = postcard::to_extend(msg, out).map_err(io::Error::other)?;
        let len = out.len() - 4;
        if len > MAX_FRAME {
            return Err(io::Error::other(format!(
                "a {} message of {len} bytes is over the limit of {MAX_FRAME}",
                msg.name()
            )));
        }
        out[..4].copy_from_slice(&(len as u32).to_le_bytes());
        let sent = self.stream.write_all(&out);
        self.out = out;
        sent
    }

    pub fn recv(&mut self) -> io::Result<Msg> {
        self.read_frame().map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(
                e.kind(),
                "the link closed (the process at the other end ended)",
            ),
            _ => e,
        })
    }

    fn read_frame(&mut self) -> io::Result<Msg> {
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message of {len} bytes is over the limit of {MAX_FRAME}"),
            ));
        }
        self.inb.resize(len, 0);
        self.reader.read_exact(&mut self.inb)?;
        postcard::from_bytes(&self.inb).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Gives up on a read after `limit` (None: waits for ever).
    pub fn patience(&self, limit: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(limit)
    }

    /// The address this end of the stream has (the interface that reaches the peer).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// Closes both directions: a thread blocked reading it wakes with an end of stream.
    pub fn close(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// `expect` for the protocol: the message that came is not the one that should have.
pub(super) fn unexpected(what: &str, got: &Msg) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("expected {what}, got {}", got.name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_message_crosses_a_socket_unchanged() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut c = Conn::new(s).unwrap();
            for _ in 0..2 {
                let m = c.recv().unwrap();
                c.send(&m).unwrap();
            }
        });
        let mut c = Conn::connect(addr, Duration::from_secs(5)).unwrap();
        let data: Vec<f32> = (0..100_000).map(|i| i as f32 * 0.37 - 1e3).collect();
        c.send(&Msg::Push {
            read_version: 1 << 40,
            arrived: 7,
            data: data.clone(),
        })
        .unwrap();
        match c.recv().unwrap() {
            Msg::Push {
                read_version,
                arrived,
                data: back,
            } => {
                assert_eq!((read_version, arrived), (1 << 40, 7));
                assert_eq!(back, data);
            }
            other => panic!("{other:?}"),
        }
        c.send(&Msg::Pull).unwrap();
        assert!(matches!(c.recv().unwrap(), Msg::Pull));
        echo.join().unwrap();
    }
}
