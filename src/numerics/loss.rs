//! Softmax cross-entropy on top of the last layer, numerically stable (log-sum-exp shifted by
//! the maximum logit).
//!
//! Labels are checked before a batch reaches this function; it must never be handed a label
//! outside `0..classes`.

/// Per-sample loss sum and correct predictions of `n` rows of `logits`; with `dlogits`, also
/// writes `scale * (softmax - one_hot)` per row (`scale` = 1 / batch size gives the gradient
/// of the batch mean). A prediction is the first maximal logit.
pub(crate) fn softmax_cross_entropy(
    classes: usize,
    logits: &[f32],
    labels: &[u32],
    scale: f32,
    mut dlogits: Option<&mut [f32]>,
) -> (f64, usize) {
    let (mut loss, mut correct) = (0.0f64, 0usize);
    for (i, (z, &label)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let label = label as usize;
        let (mut best, mut max) = (0, z[0]);
        for (j, &v) in z.iter().enumerate() {
            if v > max {
                (best, max) = (j, v);
            }
        }
        correct += usize::from(best == label);
        let sum: f32 = z.iter().map(|&v| (v - max).exp()).sum();
        loss += f64::from(sum.ln() + max - z[label]);
        if let Some(d) = dlogits.as_deref_mut() {
            let d = &mut d[i * classes..][..classes];
            let inv = scale / sum;
            for (d, &v) in d.iter_mut().zip(z) {
                *d = (v - max).exp() * inv;
            }
            d[label] -= scale;
        }
    }
    (loss, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_for_huge_logits_and_gradient_rows_sum_to_zero() {
        let logits = [1000.0, 0.0, -1000.0, 1.0, 2.0, 3.0];
        let mut d = [0.0; 6];
        let (loss, correct) = softmax_cross_entropy(3, &logits, &[0, 0], 0.5, Some(&mut d));
        let want = (1.0f64.exp() + 2.0f64.exp() + 3.0f64.exp()).ln() - 1.0;
        assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
        assert_eq!(correct, 1);
        assert!(d.iter().all(|v| v.is_finite()));
        assert!((d[0] + d[1] + d[2]).abs() < 1e-6 && (d[3] + d[4] + d[5]).abs() < 1e-6);
    }
}
