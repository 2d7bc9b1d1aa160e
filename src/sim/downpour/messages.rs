//! How the Downpour model's messages travel: on a machine's links, slices and gradients are
//! flows sharing the network and requests and acks take their route's latency; on a host,
//! every message takes the host's message latency, its data copied by the sender's thread.

use super::{Downpour, Event, Fabric, Message};
use crate::cluster::Placement;
use crate::engine::Context;
use crate::machine::network::Network;
use crate::machine::topology::Topology;
use crate::observe::{MessageKind, Observer};
use crate::sim::fabric::Wires;
use crate::training::Gradients;

impl<O: Observer, G: Gradients> Downpour<O, G> {
    /// Routes between every learner and shard over the topology's links.
    pub(super) fn links(
        topology: &Topology,
        p: &Placement,
        share_cv: f64,
    ) -> Result<Fabric, Vec<(String, String)>> {
        let (down, up) = p.server_routes(topology)?;
        Ok(Fabric::Links {
            wires: Wires::new(Network::new(topology.channel_capacities()), share_cv),
            down,
            up,
        })
    }

    /// Sends a message: on links slices and gradients are flows through the network while
    /// requests and acks only take their route's latency; on a host every message takes the
    /// host's message latency (its data was copied by the sender's thread beforehand).
    pub(super) fn send(
        &mut self,
        ctx: &mut Context<'_, Event>,
        kind: MessageKind,
        learner: usize,
        shard: usize,
    ) {
        self.learners[learner].in_transfer += 1;
        self.dispatch(ctx, kind, learner, shard);
    }

    /// Puts a message on its way without counting it again (see [`Downpour::send`]).
    pub(super) fn dispatch(
        &mut self,
        ctx: &mut Context<'_, Event>,
        kind: MessageKind,
        learner: usize,
        shard: usize,
    ) {
        let msg = Message {
            kind,
            learner,
            shard,
            sent: ctx.now(),
            life: self.life[learner],
        };
        let bytes = self.shards[shard].bytes;
        match &mut self.fabric {
            Fabric::Links { wires, down, up } => {
                let i = learner * self.shards.len() + shard;
                let route = match kind {
                    MessageKind::PullRequest | MessageKind::Gradient => &up[i],
                    MessageKind::Parameters | MessageKind::Ack => &down[i],
                };
                match kind {
                    MessageKind::PullRequest | MessageKind::Ack => {
                        ctx.schedule_in(route.latency, Event::Deliver(msg));
                    }
                    MessageKind::Parameters | MessageKind::Gradient => {
                        let now = ctx.now();
                        wires.start(now, route, bytes, msg, ctx.rng());
                        self.sync_wake(ctx);
                    }
                }
            }
            Fabric::Host(h) => {
                if matches!(kind, MessageKind::Parameters | MessageKind::Gradient) {
                    h.bytes_sent += bytes;
                }
                ctx.schedule_in(h.delay, Event::Deliver(msg));
            }
        }
    }

    /// Makes sure a wake-up is scheduled for the fabric's next change.
    pub(super) fn sync_wake(&mut self, ctx: &mut Context<'_, Event>) {
        let now = ctx.now();
        let (at, event) = match &mut self.fabric {
            Fabric::Links { wires, .. } => (wires.next_wake(now), Event::NetworkWake),
            Fabric::Host(h) => (
                h.wake_at.schedule(h.threads.next_event_time(), now),
                Event::ThreadsWake,
            ),
        };
        if let Some(t) = at {
            ctx.schedule_at(t, event);
        }
    }
}
