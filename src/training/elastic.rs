//! Elastic averaging (Zhang, Choromanska & LeCun, NeurIPS 2015), one function per step for
//! every backend: a learner's local steps between exchanges, and the elastic exchange with the
//! centre variable. Pure arithmetic; when an exchange happens is the algorithm's business.

use crate::data::{Dataset, Split};
use crate::numerics::{Objective, Scratch};

/// How a learner steps between exchanges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalRule {
    pub learning_rate: f32,
    pub weight_decay: f32,
    /// EAMSGD's Nesterov momentum; None for EASGD's plain steps.
    pub delta: Option<f32>,
}

/// A learner's local steps, one per batch, on its own parameters `x` (and, for EAMSGD, its
/// velocity `v`, as long as `x`). EASGD: `x <- x - eta (g(x) + wd x)`. EAMSGD:
/// `v <- delta v - eta (g(x + delta v) + wd (x + delta v)); x <- x + v`. Returns the mean
/// loss over the steps (NaN or infinite if any step's was).
#[allow(clippy::too_many_arguments)]
pub fn local_steps(
    objective: &dyn Objective,
    dataset: &Dataset,
    batches: &[(Vec<usize>, u64)],
    rule: LocalRule,
    x: &mut [f32],
    v: &mut Vec<f32>,
    grad: &mut [f32],
    scratch: &mut Scratch,
) -> f32 {
    let (lr, wd) = (rule.learning_rate, rule.weight_decay);
    let mut look = vec![];
    let mut sum = 0.0f32;
    for (indices, seed) in batches {
        let batch = dataset.gather(Split::Train, indices);
        match rule.delta {
            None => {
                sum += objective.loss_grad(x, &batch, *seed, grad, scratch);
                super::update::apply(x, &mut [], grad, lr, 0.0, wd);
            }
            Some(delta) => {
                v.resize(x.len(), 0.0);
                look.clear();
                look.extend(x.iter().zip(v.iter()).map(|(&x, &v)| x + delta * v));
                sum += objective.loss_grad(&look, &batch, *seed, grad, scratch);
                for (((x, v), &g), &y) in x.iter_mut().zip(v.iter_mut()).zip(&*grad).zip(&look) {
                    *v = delta * *v - lr * (g + wd * y);
                    *x += *v;
                }
            }
        }
    }
    sum / batches.len().max(1) as f32
}

/// The learner's half of an elastic exchange on one slice: `e = alpha (x - read)` into `e`,
/// and `x <- x - e`, where `read` is the centre's slice as the learner read it.
pub fn difference(x: &mut [f32], read: &[f32], alpha: f32, e: &mut Vec<f32>) {
    e.clear();
    e.extend(x.iter().zip(read).map(|(&x, &c)| alpha * (x - c)));
    for (x, &e) in x.iter_mut().zip(e.iter()) {
        *x -= e;
    }
}

/// The centre's half: `centre <- centre + e`.
pub fn absorb(centre: &mut [f32], e: &[f32]) {
    for (c, &e) in centre.iter_mut().zip(e) {
        *c += e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_moves_both_by_the_same_difference() {
        let mut x = vec![1.0f32, 3.0];
        let mut centre = vec![0.0f32, 1.0];
        let read = centre.clone();
        let mut e = vec![];
        difference(&mut x, &read, 0.25, &mut e);
        absorb(&mut centre, &e);
        assert_eq!(e, [0.25, 0.5]);
        assert_eq!(x, [0.75, 2.5]);
        assert_eq!(centre, [0.25, 1.5]);
    }
}
