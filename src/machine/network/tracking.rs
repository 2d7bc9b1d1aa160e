//! The records a kept allocation is checked with: which groups cross each channel, each
//! group's channels and its slack (the smallest equal share among them).

use super::group::{Key, NONE};
use super::{LATENT, Network};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A group crossing a channel: how many of its members cross it, and where the channel is in
/// the group's list of channels.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cross {
    pub group: u32,
    pub count: u32,
    pos: u32,
}

impl Network {
    /// Counts one more member of group `g` on channel `c`.
    pub(super) fn cross(&mut self, c: u32, g: u32) {
        let list = &mut self.crossing[c as usize];
        if let Some(x) = list.iter_mut().find(|x| x.group == g) {
            x.count += 1;
            return;
        }
        let channels = &mut self.groups[g as usize].channels;
        list.push(Cross {
            group: g,
            count: 1,
            pos: channels.len() as u32,
        });
        channels.push(c);
    }

    /// Counts one member of group `g` fewer on channel `c`.
    pub(super) fn uncross(&mut self, c: u32, g: u32) {
        let list = &mut self.crossing[c as usize];
        let Some(i) = list.iter().position(|x| x.group == g) else {
            return;
        };
        list[i].count -= 1;
        if list[i].count > 0 {
            return;
        }
        let pos = list.swap_remove(i).pos as usize;
        let channels = &mut self.groups[g as usize].channels;
        channels.swap_remove(pos);
        if let Some(&moved) = channels.get(pos)
            && let Some(x) = self.crossing[moved as usize]
                .iter_mut()
                .find(|x| x.group == g)
        {
            x.pos = pos as u32;
        }
    }

    /// How many members of group `g` cross channel `c`.
    fn crossing_count(&self, c: u32, g: u32) -> u32 {
        self.crossing[c as usize]
            .iter()
            .find(|x| x.group == g)
            .map_or(0, |x| x.count)
    }

    /// The smallest equal share (capacity / flows) among the channels group `g` crosses.
    pub(super) fn slack_min(&mut self, g: u32) -> f64 {
        loop {
            let Some(&Reverse((Key(v), c))) = self.groups[g as usize].slack.peek() else {
                return f64::INFINITY;
            };
            if self.crossing_count(c, g) == 0 {
                self.groups[g as usize].slack.pop();
                continue;
            }
            let now = self.capacities[c as usize] / self.on[c as usize] as f64;
            if now == v {
                return v;
            }
            let slack = &mut self.groups[g as usize].slack;
            slack.pop();
            slack.push(Reverse((Key(now), c)));
        }
    }

    /// Rebuilds group `h`'s slack from its channels once stale entries outnumber them.
    pub(super) fn compact_slack(&mut self, h: u32) {
        let group = &self.groups[h as usize];
        if group.slack.len() > 2 * group.channels.len() + 64 {
            self.reset_slack(h);
        }
    }

    /// Sets group `g`'s slack to its channels' shares today.
    pub(super) fn reset_slack(&mut self, g: u32) {
        let group = &mut self.groups[g as usize];
        let entries: Vec<Reverse<(Key, u32)>> = group
            .channels
            .iter()
            .map(|&c| {
                let share = self.capacities[c as usize] / self.on[c as usize] as f64;
                Reverse((Key(share), c))
            })
            .collect();
        group.slack = BinaryHeap::from(entries);
    }

    /// Rebuilds the per-channel records the kept allocation is checked with.
    pub(super) fn rebuild_tracking(&mut self) {
        self.bottleneck_of.fill(NONE);
        for list in &mut self.crossing {
            list.clear();
        }
        for group in &mut self.groups {
            group.channels.clear();
            group.slack.clear();
        }
        if !self.kept {
            return;
        }
        for g in 0..self.groups.len() {
            if self.groups[g].live {
                self.bottleneck_of[self.groups[g].bottleneck as usize] = g as u32;
            }
        }
        for slot in 0..self.flows.len() {
            let Some(f) = self.flows[slot].as_mut() else {
                continue;
            };
            if f.group == LATENT {
                continue;
            }
            let (g, path) = (f.group, std::mem::take(&mut f.channels));
            for &c in &path {
                self.cross(c, g);
            }
            if let Some(f) = self.flows[slot].as_mut() {
                f.channels = path;
            }
        }
        for g in 0..self.groups.len() {
            if self.groups[g].live {
                self.reset_slack(g as u32);
            }
        }
    }
}
