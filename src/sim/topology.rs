//! Link layouts for simulated networks, as lists of index pairs.

use rand::seq::SliceRandom;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// 0-1-2-…-(n-1).
pub fn line(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (i - 1, i)).collect()
}

/// A line closed into a circle (n ≥ 3 for a real ring).
pub fn ring(n: usize) -> Vec<(usize, usize)> {
    let mut links = line(n);
    if n >= 3 {
        links.push((n - 1, 0));
    }
    links
}

/// Everyone linked to peer 0.
pub fn star(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (0, i)).collect()
}

/// A connected random graph: a random spanning tree plus `extra` random
/// links (duplicates and self links skipped), so it has cycles.
pub fn random_connected(n: usize, extra: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut links = Vec::new();
    for i in 1..n {
        let parent = order[rng.random_range(0..i)];
        links.push((parent, order[i]));
    }
    let mut seen: std::collections::BTreeSet<(usize, usize)> =
        links.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
    for _ in 0..extra {
        if n < 2 {
            break;
        }
        let a = rng.random_range(0..n);
        let b = rng.random_range(0..n);
        if a != b && seen.insert((a.min(b), a.max(b))) {
            links.push((a, b));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shapes_have_the_expected_link_counts() {
        assert_eq!(line(5), vec![(0, 1), (1, 2), (2, 3), (3, 4)]);
        assert_eq!(ring(4).len(), 4);
        assert_eq!(star(4), vec![(0, 1), (0, 2), (0, 3)]);
    }

    #[test]
    fn random_graphs_are_connected_and_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let links = random_connected(50, 30, &mut rng);
        let mut reached = [false; 50];
        reached[0] = true;
        // Links of a spanning tree plus extras: iterate to a fixed point.
        let mut changed = true;
        while changed {
            changed = false;
            for &(a, b) in &links {
                if reached[a] != reached[b] {
                    reached[a] = true;
                    reached[b] = true;
                    changed = true;
                }
            }
        }
        assert!(reached.iter().all(|r| *r));
        let again = random_connected(50, 30, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(links, again);
    }
}
