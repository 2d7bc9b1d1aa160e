//! Measuring a built testbed over real TCP: each host's one-way latency and goodput to a
//! target host (alone on the network), then concurrent flows from several hosts into the
//! target, against what max-min sharing at the measured goodputs predicts for them
//! ([`crate::machine::network`], the simulator's own network model).
//!
//! Every connection is opened by a thread that has entered its host's namespace; the target
//! host runs a sink that answers pings and acknowledges each bulk transfer once it has read it
//! all. All traffic is bounded: a fixed number of pings and the bytes asked for, each socket
//! with a timeout.

use super::net::enter;
use super::{Testbed, TestbedError};
use crate::machine::network::Network;
use crate::machine::topology::{ChannelId, Route};
use crate::time::{SimDuration, SimTime};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const PORT: u16 = 7077;
const PINGS: usize = 200;
/// Longest any one read or write may block.
const PATIENCE: Duration = Duration::from_secs(60);
/// How long each of a host's transfers alone lasts at its port's nominal rate, and how many
/// it makes.
const ALONE: Duration = Duration::from_millis(300);
const BULKS: usize = 3;

/// What to measure: the target host, the flow sizes (one per other host in order) and when
/// each starts after the first, seconds.
#[derive(Clone, Debug)]
pub struct ProbeSpec {
    pub target: usize,
    pub flow_bytes: Vec<u64>,
    pub start_s: Vec<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostProbe {
    pub host: String,
    /// The port's rate as tc sets it, Mbit/s.
    pub port_mbit_per_s: f64,
    /// Half the median round trip of a one-byte message to the target and back.
    pub one_way_latency_us: f64,
    /// Payload bytes per second to the target, alone, Mbit/s (headers and TCP's ramp-up cost
    /// what they cost).
    pub goodput_mbit_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FlowProbe {
    pub from: String,
    pub megabytes: f64,
    /// When it started after the first, seconds.
    pub start_s: f64,
    /// From the first flow's start to the target's acknowledgement of this one's last byte.
    pub measured_s: f64,
    /// The same flow under max-min sharing at the measured goodputs and latencies.
    pub max_min_s: f64,
    /// `(max_min - measured) / measured`.
    pub error: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub topology: String,
    pub sharing: super::Sharing,
    pub target: String,
    pub hosts: Vec<HostProbe>,
    pub flows: Vec<FlowProbe>,
    /// Largest absolute `error` over the flows.
    pub max_flow_error: f64,
}

/// The measurement, or why it stopped; `stop` (Ctrl-C) is looked at between steps.
pub fn measure(tb: &Testbed, spec: &ProbeSpec, stop: &AtomicBool) -> Result<Probe, TestbedError> {
    let hosts = &tb.plan.hosts;
    let senders: Vec<usize> = (0..hosts.len()).filter(|&h| h != spec.target).collect();
    let probes = alone(tb, spec.target, stop)?;
    let sink = Sink::start(tb, spec.target)?;
    let to = sink.addr;
    // The flows, all started together.
    let n = spec.flow_bytes.len();
    let start = Arc::new(Barrier::new(n + 1));
    let t0 = Arc::new(std::sync::Mutex::new(None::<Instant>));
    // Each flow's socket, so that Ctrl-C can cut the flows short.
    let sockets = Arc::new(std::sync::Mutex::new(Vec::<TcpStream>::new()));
    let mut running = vec![];
    for (i, &bytes) in spec.flow_bytes.iter().enumerate() {
        let (start, t0, sockets) = (Arc::clone(&start), Arc::clone(&t0), Arc::clone(&sockets));
        let h = senders[i];
        let ns = tb.namespace(h);
        let delay = Duration::from_secs_f64(spec.start_s.get(i).copied().unwrap_or(0.0));
        running.push(std::thread::spawn(move || -> Result<f64, String> {
            let connected = enter(&ns).and_then(|_| connect(to)).and_then(|s| {
                if let Ok(mut all) = sockets.lock() {
                    all.push(s.try_clone()?);
                }
                Ok(s)
            });
            // Every flow reaches the barrier, connected or not, so that none waits forever.
            start.wait();
            let mut s = connected.map_err(|e| e.to_string())?;
            let began = t0
                .lock()
                .map_err(|e| e.to_string())?
                .unwrap_or_else(Instant::now);
            std::thread::sleep((began + delay).saturating_duration_since(Instant::now()));
            bulk(&mut s, bytes).map_err(|e| e.to_string())?;
            Ok(began.elapsed().as_secs_f64())
        }));
    }
    if let Ok(mut t) = t0.lock() {
        *t = Some(Instant::now());
    }
    start.wait();
    while !running.iter().all(|r| r.is_finished()) {
        if stop.load(Ordering::Relaxed) {
            if let Ok(all) = sockets.lock() {
                for s in all.iter() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
            }
            for r in running {
                let _ = r.join();
            }
            return Err(TestbedError::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut measured = vec![];
    for r in running {
        let took = r
            .join()
            .map_err(|_| TestbedError::Probe("a flow's thread panicked".into()))?
            .map_err(TestbedError::Probe)?;
        measured.push(took);
    }
    drop(sink);
    let predicted = max_min(&probes, spec);
    let flows: Vec<FlowProbe> = spec
        .flow_bytes
        .iter()
        .zip(measured.iter().zip(&predicted))
        .enumerate()
        .map(|(i, (&bytes, (&m, &p)))| FlowProbe {
            from: hosts[senders[i]].name.clone(),
            megabytes: bytes as f64 / 1e6,
            start_s: spec.start_s.get(i).copied().unwrap_or(0.0),
            measured_s: m,
            max_min_s: p,
            error: (p - m) / m,
        })
        .collect();
    Ok(Probe {
        topology: tb.plan.topology.clone(),
        sharing: tb.sharing,
        target: hosts[spec.target].name.clone(),
        max_flow_error: flows.iter().map(|f| f.error.abs()).fold(0.0, f64::max),
        hosts: probes,
        flows,
    })
}

/// Each host but `target`, alone on the testbed: its one-way latency and goodput to `target`.
pub fn alone(
    tb: &Testbed,
    target: usize,
    stop: &AtomicBool,
) -> Result<Vec<HostProbe>, TestbedError> {
    let hosts = &tb.plan.hosts;
    let sink = Sink::start(tb, target)?;
    let to = sink.addr;
    let mut probes = vec![];
    for h in (0..hosts.len()).filter(|&h| h != target) {
        if stop.load(Ordering::Relaxed) {
            return Err(TestbedError::Interrupted);
        }
        let port = hosts[h].port_bits_per_s.min(hosts[target].port_bits_per_s);
        let bytes = (port as f64 / 8.0 * ALONE.as_secs_f64()) as u64;
        let (latency, goodput) = in_host(tb, h, move || {
            let mut s = connect(to)?;
            let mut rtts = vec![];
            for _ in 0..PINGS {
                let t = Instant::now();
                s.write_all(&[0])?;
                s.read_exact(&mut [0u8; 1])?;
                rtts.push(t.elapsed().as_secs_f64());
            }
            rtts.sort_by(f64::total_cmp);
            let one_way = rtts[PINGS / 2] / 2.0;
            // The median of a few transfers: this machine's other work slows some.
            let mut rates = vec![];
            for _ in 0..BULKS {
                let took = bulk(&mut s, bytes)?;
                rates.push(bytes as f64 / (took - 2.0 * one_way).max(1e-9));
            }
            rates.sort_by(f64::total_cmp);
            Ok((one_way, rates[BULKS / 2]))
        })?;
        probes.push(HostProbe {
            host: hosts[h].name.clone(),
            port_mbit_per_s: hosts[h].port_bits_per_s as f64 / 1e6,
            one_way_latency_us: latency * 1e6,
            goodput_mbit_per_s: goodput * 8.0 / 1e6,
        });
    }
    Ok(probes)
}

/// Finish times of the flows under max-min sharing: host i's uplink at its measured goodput,
/// the target's downlink at the fastest of them, each flow's measured latency before it and
/// after it (the acknowledgement).
fn max_min(hosts: &[HostProbe], spec: &ProbeSpec) -> Vec<f64> {
    let n = spec.flow_bytes.len();
    let bytes_per_ns = |h: &HostProbe| h.goodput_mbit_per_s * 1e6 / 8.0 / 1e9;
    let mut capacities: Vec<f64> = hosts.iter().map(bytes_per_ns).collect();
    capacities.push(capacities.iter().copied().fold(0.0, f64::max));
    let down = ChannelId(hosts.len() as u32);
    let mut net = Network::new(capacities);
    let mut order: Vec<usize> = (0..n).collect();
    let start =
        |i: usize| SimTime::from_nanos((spec.start_s.get(i).copied().unwrap_or(0.0) * 1e9) as u64);
    order.sort_by_key(|&i| (start(i), i));
    let mut ids = vec![None; n];
    let mut finish = vec![0.0; n];
    let mut done = vec![];
    let mut next = order.into_iter().peekable();
    loop {
        let arrival = next.peek().map(|&i| start(i));
        let t = match (arrival, net.next_event_time()) {
            (Some(a), Some(e)) => a.min(e),
            (a, e) => match a.or(e) {
                Some(t) => t,
                None => break,
            },
        };
        net.advance(t, &mut done);
        for id in done.drain(..) {
            if let Some(i) = ids.iter().position(|&x| x == Some(id)) {
                finish[i] = t.as_secs_f64() + hosts[i].one_way_latency_us * 1e-6;
            }
        }
        while let Some(&i) = next.peek().filter(|&&i| start(i) <= t) {
            next.next();
            let latency = SimDuration::from_secs_ceil(hosts[i].one_way_latency_us * 1e-6);
            let route = Route {
                channels: vec![ChannelId(i as u32), down],
                latency,
            };
            ids[i] = Some(net.start_flow(t, &route, spec.flow_bytes[i]));
        }
    }
    finish
}

/// Sends `bytes` after a bulk header and waits for the acknowledgement; the seconds it took.
fn bulk(s: &mut TcpStream, bytes: u64) -> std::io::Result<f64> {
    let chunk = vec![0x5au8; 64 * 1024];
    let t = Instant::now();
    s.write_all(&[1])?;
    s.write_all(&bytes.to_le_bytes())?;
    let mut left = bytes;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    s.read_exact(&mut [0u8; 1])?;
    Ok(t.elapsed().as_secs_f64())
}

fn connect(to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(PATIENCE))?;
    s.set_write_timeout(Some(PATIENCE))?;
    Ok(s)
}

/// Runs `f` on a thread inside host `h`'s namespace.
fn in_host<T: Send + 'static>(
    tb: &Testbed,
    h: usize,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, TestbedError> {
    let ns = tb.namespace(h);
    let name = tb.plan.hosts[h].name.clone();
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
    .join()
    .map_err(|_| TestbedError::Probe(format!("{name}'s thread panicked")))?
    .map_err(|e| TestbedError::Probe(format!("from {name}: {e}")))
}

/// The target's listener: answers pings, acknowledges bulk transfers. Stops when dropped.
struct Sink {
    addr: SocketAddr,
    done: Arc<AtomicBool>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

impl Sink {
    fn start(tb: &Testbed, h: usize) -> Result<Self, TestbedError> {
        let addr = SocketAddr::from((super::net::address(h), PORT));
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        let listener = in_host(tb, h, move || {
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })?;
        let accepting = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        std::thread::spawn(move || serve(s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(Sink {
            addr,
            done,
            accepting: Some(accepting),
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // The port is free again once the listener is closed.
        if let Some(t) = self.accepting.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut s: TcpStream) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(PATIENCE));
    let mut buf = vec![0u8; 256 * 1024];
    let mut op = [0u8; 1];
    while s.read_exact(&mut op).is_ok() {
        if op[0] == 1 {
            let mut len = [0u8; 8];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let mut left = u64::from_le_bytes(len);
            while left > 0 {
                let k = left.min(buf.len() as u64) as usize;
                match s.read(&mut buf[..k]) {
                    Ok(0) | Err(_) => return,
                    Ok(r) => left -= r as u64,
                }
            }
        }
        if s.write_all(&[1]).is_err() {
            return;
        }
    }
}
