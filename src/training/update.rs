//! The server's update rule, one function for every backend: the simulator's shards and the real
//! backend's shard threads apply a gradient slice through it, so the two cannot drift apart.
//! Pure arithmetic on slices; it never decides when an update happens.

/// Applies gradient slice `g` to parameter slice `x`: plain SGD `x <- x - lr g`, with L2 weight
/// decay `g + wd x`, and with heavy-ball momentum `v <- mu v + (g + wd x); x <- x - lr v` when
/// `mu != 0` (then `v` is the slice's velocity, as long as `x`).
pub fn apply(x: &mut [f32], v: &mut [f32], g: &[f32], lr: f32, mu: f32, wd: f32) {
    if mu == 0.0 && wd == 0.0 {
        // Plain SGD, written exactly as the sequential reference: x <- x - gamma * g.
        for (x, &g) in x.iter_mut().zip(g) {
            *x -= lr * g;
        }
    } else if mu == 0.0 {
        for (x, &g) in x.iter_mut().zip(g) {
            *x -= lr * (g + wd * *x);
        }
    } else {
        for ((x, v), &g) in x.iter_mut().zip(v.iter_mut()).zip(g) {
            *v = mu * *v + (g + wd * *x);
            *x -= lr * *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
