//! The server's update rule, one function for every backend: the simulator's shards and the real
//! backend's shard threads apply a gradient slice through it, so the two cannot drift apart.
//! Pure arithmetic on slices; it never decides when an update happens.

use crate::algorithm::Rule;

/// The server's step sizes: learning rate, heavy-ball momentum, L2 weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub lr: f32,
    pub mu: f32,
    pub wd: f32,
}

/// Applies gradient slice `g` by `rule`: `staleness` is the update's (updates applied since the
/// learner read the slice) and `read` the slice as the learner read it (used by delay
/// compensation only; may be empty otherwise). With [`Rule::Sgd`] this is exactly [`apply`].
pub fn apply_rule(
    rule: Rule,
    (x, v): (&mut [f32], &mut [f32]),
    g: &[f32],
    read: &[f32],
    staleness: u64,
    rates: Rates,
) {
    let Rates { lr, mu, wd } = rates;
    match rule {
        Rule::Sgd => apply(x, v, g, lr, mu, wd),
        Rule::StalenessAware => {
            let lr = if staleness > 1 {
                lr / staleness as f32
            } else {
                lr
            };
            apply(x, v, g, lr, mu, wd)
        }
        Rule::DelayCompensated { lambda } => {
            for (i, (x, &g)) in x.iter_mut().zip(g).enumerate() {
                let b = read.get(i).copied().unwrap_or(*x);
                let g = g + lambda * g * g * (*x - b) + wd * *x;
                if mu == 0.0 {
                    *x -= lr * g;
                } else if let Some(v) = v.get_mut(i) {
                    *v = mu * *v + g;
                    *x -= lr * *v;
                }
            }
        }
    }
}

/// Applies gradient slice `g` to parameter slice `x`: plain SGD `x <- x - lr g`, with L2 weight
/// decay `g + wd x`, and with heavy-ball momentum `v <- mu v + (g + wd x); x <- x - lr v` when
/// `mu != 0` (then `v` is the slice's velocity, as long as `x`). Coordinate by coordinate this
/// is [`sgd`], [`decayed`] or [`momentum`], the forms a backend that writes coordinates one
/// at a time (Hogwild) uses.
pub fn apply(x: &mut [f32], v: &mut [f32], g: &[f32], lr: f32, mu: f32, wd: f32) {
    if mu == 0.0 && wd == 0.0 {
        for (x, &g) in x.iter_mut().zip(g) {
            *x = sgd(*x, g, lr);
        }
    } else if mu == 0.0 {
        for (x, &g) in x.iter_mut().zip(g) {
            *x = decayed(*x, g, lr, wd);
        }
    } else {
        for ((x, v), &g) in x.iter_mut().zip(v.iter_mut()).zip(g) {
            (*x, *v) = momentum(*x, *v, g, lr, mu, wd);
        }
    }
}

/// One coordinate of plain SGD, written exactly as the sequential reference: x - gamma g.
#[inline(always)]
pub fn sgd(x: f32, g: f32, lr: f32) -> f32 {
    x - lr * g
}

/// One coordinate of SGD with L2 weight decay: x - lr (g + wd x).
#[inline(always)]
pub fn decayed(x: f32, g: f32, lr: f32, wd: f32) -> f32 {
    x - lr * (g + wd * x)
}

/// One coordinate of heavy-ball momentum with weight decay: the new (x, v).
#[inline(always)]
pub fn momentum(x: f32, v: f32, g: f32, lr: f32, mu: f32, wd: f32) -> (f32, f32) {
    let v = mu * v + (g + wd * x);
    (x - lr * v, v)
}

/// Adds gradient slice `g` into the running sum `acc` (as a ring all-reduce's receiver does:
/// what arrived plus its own).
pub fn sum_into(acc: &mut [f32], g: &[f32]) {
    for (a, &g) in acc.iter_mut().zip(g) {
        *a += g;
    }
}

/// Turns a sum of `n` gradients into their mean.
pub fn to_mean(acc: &mut [f32], n: usize) {
    let n = n as f32;
    for a in acc {
        *a /= n;
    }
}

/// Synchronous SGD's gradient: the slices summed in the order given, then divided by their
/// count, into `out`. Every backend sums in the same order, so they agree bit for bit.
pub fn mean_in_order<'a>(out: &mut Vec<f32>, mut slices: impl Iterator<Item = &'a [f32]>) {
    out.clear();
    let Some(first) = slices.next() else {
        return;
    };
    out.extend_from_slice(first);
    let mut n = 1;
    for g in slices {
        sum_into(out, g);
        n += 1;
    }
    to_mean(out, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sgd_at(lr: f32) -> Rates {
        Rates {
            lr,
            mu: 0.0,
            wd: 0.0,
        }
    }

    #[test]
    fn staleness_aware_and_delay_compensated_follow_their_formulas() {
        let g = [0.5f32, -1.0];
        // Plain SGD at rate `lr` by `rule`, with the learner's `read` and `staleness`.
        let by = |rule, x: &mut [f32], read: &[f32], staleness, lr| {
            apply_rule(rule, (x, &mut []), &g, read, staleness, sgd_at(lr))
        };
        // Staleness 0 and 1 leave the rate alone; 4 divides it by 4.
        for t in [0, 1] {
            let (mut a, mut b) = (vec![1.0f32, 2.0], vec![1.0f32, 2.0]);
            by(Rule::StalenessAware, &mut a, &[], t, 0.1);
            apply(&mut b, &mut [], &g, 0.1, 0.0, 0.0);
            assert_eq!(a, b);
        }
        let mut x = vec![1.0f32, 2.0];
        by(Rule::StalenessAware, &mut x, &[], 4, 0.1);
        assert_eq!(x, [1.0 - 0.025 * 0.5, 2.0 + 0.025]);
        // Delay compensation: g + lambda g^2 (x - read).
        let mut x = vec![1.0f32, 2.0];
        let read = [0.5f32, 2.5];
        by(
            Rule::DelayCompensated { lambda: 2.0 },
            &mut x,
            &read,
            3,
            0.1,
        );
        let c0 = 0.5 + 2.0 * 0.25 * 0.5;
        let c1 = -1.0 + 2.0 * 1.0 * -0.5;
        assert_eq!(x, [1.0 - 0.1 * c0, 2.0 - 0.1 * c1]);
        // With lambda 0 it is plain SGD, bit for bit.
        let (mut a, mut b) = (vec![0.3f32, -0.7], vec![0.3f32, -0.7]);
        by(
            Rule::DelayCompensated { lambda: 0.0 },
            &mut a,
            &read,
            5,
            0.05,
        );
        apply(&mut b, &mut [], &g, 0.05, 0.0, 0.0);
        assert_eq!(a, b);
    }

    #[test]
    fn sgd_decay_and_momentum_follow_their_formulas() {
        let mut x = vec![1.0, -2.0];
        apply(&mut x, &mut [], &[0.5, 1.0], 0.1, 0.0, 0.0);
        assert_eq!(x, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 1.0]);
        let mut x = vec![2.0];
        apply(&mut x, &mut [], &[1.0], 0.5, 0.0, 0.1);
        assert_eq!(x, [2.0 - 0.5 * (1.0 + 0.1 * 2.0)]);
        let (mut x, mut v) = (vec![1.0f32], vec![0.5f32]);
        apply(&mut x, &mut v, &[1.0], 0.1, 0.9, 0.0);
        assert_eq!(v, [0.9 * 0.5 + 1.0]);
        assert_eq!(x, [1.0 - 0.1 * (0.9 * 0.5 + 1.0)]);
    }
}
