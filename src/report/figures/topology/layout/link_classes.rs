//! Link classes: links with the same class name, bandwidth and latency are one class, with one
//! colour, one stroke width (thicker for more bandwidth) and one legend label.
//!
//! It only names and styles the links; it must never decide where they are drawn, and the
//! classes come out in one order (by bandwidth, then name, then latency) whatever the order of
//! the links.

use crate::machine::topology::{ChannelId, Topology};
use crate::report::figures::color;
use plotters::style::RGBColor;

/// Links with the same class name, bandwidth and latency share a colour and a legend entry.
pub(crate) struct LinkClass {
    pub(crate) label: String,
    pub(crate) stroke: u32,
    pub(crate) color: RGBColor,
}

/// Every link as (node, node, class), and the classes sorted by bandwidth, highest first.
pub(super) fn link_classes(t: &Topology) -> (Vec<(usize, usize, usize)>, Vec<LinkClass>) {
    let mut raw = vec![];
    for e in 0..t.link_count() {
        let Ok(c) = u32::try_from(2 * e) else { break };
        let (link, a, b) = t.channel_ends(ChannelId(c));
        let name = link.class.clone().unwrap_or_else(|| "link".into());
        raw.push((
            a.index(),
            b.index(),
            (name, link.bandwidth_gb_per_s, link.latency_ns),
        ));
    }
    let mut keys: Vec<(String, f64, u64)> = raw.iter().map(|r| r.2.clone()).collect();
    keys.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| a.0.cmp(&b.0))
            .then(a.2.cmp(&b.2))
    });
    keys.dedup_by(|a, b| a.0 == b.0 && a.1.to_bits() == b.1.to_bits() && a.2 == b.2);
    let (lo, hi) = keys.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), k| {
        (lo.min(k.1), hi.max(k.1))
    });
    // Black first, and the palette's yellow last: it barely shows as a thin line on white.
    const ORDER: [usize; 8] = [7, 0, 1, 2, 3, 4, 5, 6];
    let classes = keys
        .iter()
        .enumerate()
        .map(|(i, (name, bw, lat))| {
            let rel = if hi > lo {
                (bw / lo).ln() / (hi / lo).ln()
            } else {
                0.0
            };
            LinkClass {
                label: format!("{name}: {} GB/s, {}", number(*bw), latency(*lat)),
                stroke: 2 + (3.0 * rel).round() as u32,
                color: color(ORDER[i % ORDER.len()]),
            }
        })
        .collect();
    let links = raw
        .into_iter()
        .map(|(a, b, k)| {
            let c = keys
                .iter()
                .position(|x| x.0 == k.0 && x.1.to_bits() == k.1.to_bits() && x.2 == k.2)
                .unwrap_or(0);
            (a, b, c)
        })
        .collect();
    (links, classes)
}

/// At most three decimals, for legends: 12, 38.4, 12.5.
fn number(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        format!("{v:.1e}")
    } else {
        r.to_string()
    }
}

fn latency(ns: u64) -> String {
    if ns >= 1000 {
        format!("{} µs", number(ns as f64 / 1000.0))
    } else {
        format!("{ns} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_latencies_read_as_in_the_legend() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(38.4), "38.4");
        assert_eq!(number(12.5004), "12.5");
        assert_eq!(number(0.0001), "1.0e-4");
        assert_eq!(latency(150), "150 ns");
        assert_eq!(latency(2000), "2 µs");
        assert_eq!(latency(1500), "1.5 µs");
    }
}
