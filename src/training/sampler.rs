//! Which samples each learner trains on: the training set is shuffled and split into one
//! contiguous partition per learner at the start of every epoch (as the seed paper did), and a
//! learner takes its mini-batches from its own partition in order, wrapping around if it is
//! faster than the others. Deterministic from its seed; never touches the simulation's RNG.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub struct Sampler {
    rng: ChaCha8Rng,
    order: Vec<usize>,
    /// `order[bounds[l]..bounds[l + 1]]` is learner l's partition.
    bounds: Vec<usize>,
    cursors: Vec<usize>,
}

impl Sampler {
    /// `samples` training samples split among `learners`; the first partition is drawn now.
    pub fn new(samples: usize, learners: usize, seed: u64) -> Self {
        let learners = learners.max(1);
        let bounds = (0..=learners).map(|l| l * samples / learners).collect();
        let mut s = Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: (0..samples).collect(),
            bounds,
            cursors: vec![0; learners],
        };
        s.repartition();
        s
    }

    /// The sampler of a run with seed `run_seed`: its own stream, apart from the simulation's
    /// and the gradients'.
    pub fn for_run(samples: usize, learners: usize, run_seed: u64) -> Self {
        Self::new(samples, learners, run_seed ^ 0x5EED_DA7A)
    }

    /// Shuffles the whole set and deals it out again; every learner starts its new partition.
    pub fn repartition(&mut self) {
        self.order.shuffle(&mut self.rng);
        self.cursors.iter_mut().for_each(|c| *c = 0);
    }

    /// The next `batch` sample indices of `learner`'s partition (wrapping around).
    pub fn next_batch(&mut self, learner: usize, batch: usize) -> Vec<usize> {
        let (a, b) = (self.bounds[learner], self.bounds[learner + 1]);
        let part = &self.order[a..b];
        if part.is_empty() {
            return vec![];
        }
        let c = &mut self.cursors[learner];
        (0..batch)
            .map(|_| {
                let i = part[*c % part.len()];
                *c += 1;
                i
            })
            .collect()
    }
}

/// A seed for one gradient (dropout masks), a pure function of the run's seed, the learner and
/// its iteration, so that no random stream couples one learner's numbers to another's timing.
pub fn gradient_seed(run_seed: u64, learner: usize, iteration: u64) -> u64 {
    // SplitMix64 finalizer over a mix of the three.
    let mut z = run_seed
        ^ (learner as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ iteration.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_set_once_per_epoch() {
        let mut s = Sampler::new(10, 3, 1);
        let mut seen: Vec<usize> = (0..3)
            .flat_map(|l| {
                let len = s.bounds[l + 1] - s.bounds[l];
                s.next_batch(l, len)
            })
            .collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        // Wraps around within a partition.
        let mut one = Sampler::new(4, 1, 2);
        let a = one.next_batch(0, 4);
        assert_eq!(one.next_batch(0, 2), a[..2].to_vec());
    }

    #[test]
    fn gradient_seeds_differ() {
        assert_ne!(gradient_seed(1, 0, 0), gradient_seed(1, 1, 0));
        assert_ne!(gradient_seed(1, 0, 0), gradient_seed(1, 0, 1));
        assert_eq!(gradient_seed(5, 2, 3), gradient_seed(5, 2, 3));
    }
}
