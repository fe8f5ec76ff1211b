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

/// A random `k`-regular graph (every peer has exactly `k` links), connected:
/// the configuration model, retried until it has no self link, no double
/// link and one component. Needs `n * k` even and `k < n`; otherwise, or if
/// no such graph turns up in 100 tries, falls back to [`random_connected`].
pub fn random_regular(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    if k == 0 || k >= n || (n * k) % 2 == 1 {
        return random_connected(n, n * k / 2, rng);
    }
    'attempt: for _ in 0..100 {
        let mut stubs: Vec<usize> = (0..n).flat_map(|i| std::iter::repeat_n(i, k)).collect();
        stubs.shuffle(rng);
        let mut seen = std::collections::HashSet::new();
        let mut links = Vec::with_capacity(n * k / 2);
        for pair in stubs.chunks(2) {
            let (a, b) = (pair[0], pair[1]);
            if a == b || !seen.insert((a.min(b), a.max(b))) {
                continue 'attempt;
            }
            links.push((a, b));
        }
        if is_connected(n, &links) {
            return links;
        }
    }
    random_connected(n, n * k / 2, rng)
}

/// A small world (Watts–Strogatz): a ring where each peer links to its `k`
/// nearest (k even), each link rewired to a random peer with chance `p`.
/// Rewiring that would disconnect the graph is undone.
pub fn small_world(n: usize, k: usize, p: f64, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let half = (k / 2).max(1);
    let mut links: Vec<(usize, usize)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..n {
        for j in 1..=half {
            let t = (i + j) % n;
            if t != i && seen.insert((i.min(t), i.max(t))) {
                links.push((i, t));
            }
        }
    }
    for index in 0..links.len() {
        if !rng.random_bool(p) {
            continue;
        }
        let (a, old) = links[index];
        let b = rng.random_range(0..n);
        if b == a || seen.contains(&(a.min(b), a.max(b))) {
            continue;
        }
        links[index] = (a, b);
        if is_connected(n, &links) {
            seen.remove(&(a.min(old), a.max(old)));
            seen.insert((a.min(b), a.max(b)));
        } else {
            links[index] = (a, old);
        }
    }
    links
}

/// A scale-free graph (Barabási–Albert): each new peer links to `m`
/// distinct earlier peers chosen in proportion to their degree, so a few
/// hubs collect many links. Connected by construction.
pub fn scale_free(n: usize, m: usize, rng: &mut ChaCha8Rng) -> Vec<(usize, usize)> {
    let m = m.max(1);
    let mut links = Vec::new();
    // Each link end once per link: picking uniformly from it is picking by degree.
    let mut ends: Vec<usize> = Vec::new();
    let seed = (m + 1).min(n);
    for a in 0..seed {
        for b in (a + 1)..seed {
            links.push((a, b));
            ends.extend([a, b]);
        }
    }
    for new in seed..n {
        let mut chosen = std::collections::BTreeSet::new();
        while chosen.len() < m.min(new) {
            chosen.insert(ends[rng.random_range(0..ends.len())]);
        }
        for old in chosen {
            links.push((old, new));
            ends.extend([old, new]);
        }
    }
    links
}

/// Whether `links` join all `n` peers.
pub fn is_connected(n: usize, links: &[(usize, usize)]) -> bool {
    if n == 0 {
        return true;
    }
    let mut adjacency = vec![Vec::new(); n];
    for &(a, b) in links {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    let mut seen = vec![false; n];
    seen[0] = true;
    let mut stack = vec![0];
    let mut count = 1;
    while let Some(i) = stack.pop() {
        for &j in &adjacency[i] {
            if !seen[j] {
                seen[j] = true;
                count += 1;
                stack.push(j);
            }
        }
    }
    count == n
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

    fn degrees(n: usize, links: &[(usize, usize)]) -> Vec<usize> {
        let mut d = vec![0; n];
        for &(a, b) in links {
            d[a] += 1;
            d[b] += 1;
        }
        d
    }

    #[test]
    fn regular_graphs_have_equal_degrees_and_one_component() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let links = random_regular(1000, 4, &mut rng);
        assert!(degrees(1000, &links).iter().all(|d| *d == 4));
        assert!(is_connected(1000, &links));
        let set: std::collections::BTreeSet<_> =
            links.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect();
        assert_eq!(set.len(), links.len(), "no double links");
    }

    #[test]
    fn small_worlds_stay_connected_and_keep_their_link_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let links = small_world(500, 4, 0.2, &mut rng);
        assert_eq!(links.len(), 1000);
        assert!(is_connected(500, &links));
        assert!(links.iter().all(|(a, b)| a != b));
    }

    #[test]
    fn scale_free_graphs_grow_hubs() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let links = scale_free(2000, 2, &mut rng);
        assert!(is_connected(2000, &links));
        let d = degrees(2000, &links);
        let max = *d.iter().max().unwrap();
        assert!(
            max > 40,
            "a hub should collect far more than the mean of 4 links, got {max}"
        );
        assert!(d.iter().all(|x| *x >= 2));
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
