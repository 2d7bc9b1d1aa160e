//! The event timeline in Chrome Trace Event JSON (`--trace FILE`), to open in Perfetto or
//! chrome://tracing: one track per learner (its activities), one per shard (its updates), and
//! every message as an async slice from send to delivery. Timestamps are microseconds.

use crate::cluster::learner::Segment;
use crate::observe::{FaultSite, MessageRecord, Observer};
use crate::time::SimTime;
use serde::Serialize;

const PID_LEARNERS: u32 = 1;
const PID_SHARDS: u32 = 2;
const PID_NETWORK: u32 = 3;

#[derive(Serialize)]
struct TraceEvent {
    name: String,
    cat: &'static str,
    ph: &'static str,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct TraceFile<'a> {
    #[serde(rename = "traceEvents")]
    trace_events: &'a [TraceEvent],
    #[serde(rename = "displayTimeUnit")]
    display_time_unit: &'static str,
}

fn us(t: SimTime) -> f64 {
    t.as_nanos() as f64 / 1000.0
}

/// Collects a run's timeline.
pub struct TraceRecorder {
    events: Vec<TraceEvent>,
    next_id: u64,
}

impl TraceRecorder {
    /// Names the tracks: learners by GPU, shards by core.
    pub fn new(learner_gpus: &[String], shard_cores: &[String]) -> Self {
        let mut events = vec![];
        let meta = |pid, tid, kind: &'static str, name: String| TraceEvent {
            name: kind.into(),
            cat: "__metadata",
            ph: "M",
            ts: 0.0,
            dur: None,
            pid,
            tid,
            id: None,
            args: Some(serde_json::json!({ "name": name })),
        };
        events.push(meta(PID_LEARNERS, 0, "process_name", "learners".into()));
        events.push(meta(PID_SHARDS, 0, "process_name", "server shards".into()));
        events.push(meta(PID_NETWORK, 0, "process_name", "messages".into()));
        for (i, g) in learner_gpus.iter().enumerate() {
            events.push(meta(
                PID_LEARNERS,
                i as u32,
                "thread_name",
                format!("learner {i} ({g})"),
            ));
            events.push(meta(
                PID_NETWORK,
                i as u32,
                "thread_name",
                format!("learner {i}"),
            ));
        }
        for (i, c) in shard_cores.iter().enumerate() {
            events.push(meta(
                PID_SHARDS,
                i as u32,
                "thread_name",
                format!("shard {i} ({c})"),
            ));
        }
        Self { events, next_id: 0 }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn to_json(&self) -> String {
        let file = TraceFile {
            trace_events: &self.events,
            display_time_unit: "ns",
        };
        let mut s = serde_json::to_string(&file).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

impl Observer for TraceRecorder {
    /// A failure or a return is an instant mark on the learner's track.
    fn fault(&mut self, site: FaultSite, down: bool, time: SimTime) {
        let (pid, tid) = match site {
            FaultSite::Learner(l) => (PID_LEARNERS, l as u32),
            FaultSite::Shard(s) => (PID_SHARDS, s as u32),
        };
        self.events.push(TraceEvent {
            name: if down { "failed" } else { "back" }.into(),
            cat: "fault",
            ph: "i",
            ts: us(time),
            dur: None,
            pid,
            tid,
            id: None,
            args: Some(serde_json::json!({ "s": "t" })),
        });
    }

    fn learner_activity(&mut self, learner: usize, seg: Segment) {
        self.events.push(TraceEvent {
            name: seg.activity.name().into(),
            cat: "learner",
            ph: "X",
            ts: us(seg.start),
            dur: Some(us(seg.end) - us(seg.start)),
            pid: PID_LEARNERS,
            tid: learner as u32,
            id: None,
            args: None,
        });
    }

    fn shard_update(&mut self, shard: usize, learner: usize, start: SimTime, end: SimTime) {
        self.events.push(TraceEvent {
            name: format!("update from learner {learner}"),
            cat: "shard",
            ph: "X",
            ts: us(start),
            dur: Some(us(end) - us(start)),
            pid: PID_SHARDS,
            tid: shard as u32,
            id: None,
            args: None,
        });
    }

    fn message(&mut self, r: MessageRecord) {
        let id = self.next_id;
        self.next_id += 1;
        let name = format!("{} shard {}", r.kind.name(), r.shard);
        for (ph, t) in [("b", r.sent), ("e", r.delivered)] {
            self.events.push(TraceEvent {
                name: name.clone(),
                cat: "message",
                ph,
                ts: us(t),
                dur: None,
                pid: PID_NETWORK,
                tid: r.learner as u32,
                id: Some(id),
                args: (ph == "b").then(|| serde_json::json!({ "bytes": r.bytes })),
            });
        }
    }
}
