//! Matrix products on row-major `f32` slices, the one primitive the heavy layers are built on.
//!
//! Wraps ndarray's `general_mat_mul` (matrixmultiply underneath, single-threaded, blocked over
//! the inner dimension in fixed steps, so an element's summation order depends only on `k`).
//! It must never use a thread pool: callers rely on each product being bit-reproducible.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// How a stored operand is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// `c (m x n) = alpha * op(a) (m x k) * op(b) (k x n) + beta * c`. With `Op::T` the operand is
/// stored transposed (`a` as `k x m`, `b` as `n x k`). With `beta == 0` the old `c` is not read.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: &[f32],
    op_a: Op,
    b: &[f32],
    op_b: Op,
    beta: f32,
    c: &mut [f32],
) {
    let a = view(a, m, k, op_a);
    let b = view(b, k, n, op_b);
    let mut c =
        ArrayViewMut2::from_shape((m, n), &mut c[..m * n]).expect("gemm: c holds m * n elements");
    general_mat_mul(alpha, &a, &b, beta, &mut c);
}

/// A `rows x cols` view of `data`, read through `op`.
fn view(data: &[f32], rows: usize, cols: usize, op: Op) -> ArrayView2<'_, f32> {
    let data = &data[..rows * cols];
    match op {
        Op::N => ArrayView2::from_shape((rows, cols), data).expect("gemm: operand size"),
        Op::T => ArrayView2::from_shape((cols, rows), data)
            .expect("gemm: operand size")
            .reversed_axes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], ta: Op, b: &[f32], tb: Op) -> Vec<f32> {
        let at = |i: usize, l: usize| {
            if ta == Op::N {
                a[i * k + l]
            } else {
                a[l * m + i]
            }
        };
        let bt = |l: usize, j: usize| {
            if tb == Op::N {
                b[l * n + j]
            } else {
                b[j * k + l]
            }
        };
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| at(i, l) * bt(l, j)).sum();
            }
        }
        c
    }

    #[test]
    fn all_transpose_combinations_match_the_definition() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        for ta in [Op::N, Op::T] {
            for tb in [Op::N, Op::T] {
                let want = naive(m, n, k, &a, ta, &b, tb);
                let mut c = vec![1.0; m * n];
                gemm((m, n, k), 2.0, &a, ta, &b, tb, 0.5, &mut c);
                for (got, want) in c.iter().zip(&want) {
                    assert!((got - (2.0 * want + 0.5)).abs() < 1e-5, "{ta:?} {tb:?}");
                }
            }
        }
    }
}
