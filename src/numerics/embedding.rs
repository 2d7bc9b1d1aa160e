//! Embedding bag: each sample's output is the mean of the table rows of its tokens (a zero
//! vector for an empty bag); backward adds to the rows used and touches no other.
//!
//! The table is `[vocabulary][dim]`, no bias. Token ids are checked against the vocabulary
//! before a batch reaches this layer; it must never be handed unchecked ids.

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EmbeddingBag {
    pub vocabulary: usize,
    pub dim: usize,
}

impl EmbeddingBag {
    pub fn weight_count(&self) -> usize {
        self.vocabulary * self.dim
    }

    /// Sample `i` holds `ids[offsets[i]..offsets[i + 1]]`; writes `offsets.len() - 1` rows.
    pub fn forward(&self, offsets: &[u32], ids: &[u32], table: &[f32], y: &mut [f32]) {
        for (bag, out) in offsets.windows(2).zip(y.chunks_exact_mut(self.dim)) {
            out.fill(0.0);
            let tokens = &ids[bag[0] as usize..bag[1] as usize];
            for &id in tokens {
                let row = &table[id as usize * self.dim..][..self.dim];
                for (o, r) in out.iter_mut().zip(row) {
                    *o += r;
                }
            }
            if !tokens.is_empty() {
                let inv = 1.0 / tokens.len() as f32;
                out.iter_mut().for_each(|o| *o *= inv);
            }
        }
    }

    /// Adds `dy` (one row per bag) divided by the bag's size to the rows of its tokens, in
    /// sample order.
    pub fn backward(&self, offsets: &[u32], ids: &[u32], dy: &[f32], dtable: &mut [f32]) {
        for (bag, g) in offsets.windows(2).zip(dy.chunks_exact(self.dim)) {
            let tokens = &ids[bag[0] as usize..bag[1] as usize];
            if tokens.is_empty() {
                continue;
            }
            let inv = 1.0 / tokens.len() as f32;
            for &id in tokens {
                let row = &mut dtable[id as usize * self.dim..][..self.dim];
                for (r, g) in row.iter_mut().zip(g) {
                    *r += g * inv;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_rows_and_empty_bags_are_zero() {
        let l = EmbeddingBag {
            vocabulary: 3,
            dim: 2,
        };
        let table = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (offsets, ids) = ([0, 2, 2, 3], [0, 2, 1]);
        let mut y = [9.0; 6];
        l.forward(&offsets, &ids, &table, &mut y);
        assert_eq!(y, [3.0, 4.0, 0.0, 0.0, 3.0, 4.0]);
        let mut dt = [0.0; 6];
        l.backward(&offsets, &ids, &[1.0, 2.0, 7.0, 7.0, 1.0, 1.0], &mut dt);
        assert_eq!(dt, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0]);
    }
}
