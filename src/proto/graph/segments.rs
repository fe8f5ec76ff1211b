//! A vector that grows by fixed-size segments instead of by doubling.

use std::ops::{Index, IndexMut};

/// Elements per segment: a few tens of kilobytes of graph nodes.
const SEGMENT: usize = 256;

/// A growable array whose elements never move once pushed, stored in
/// segments of [`SEGMENT`] elements.
///
/// A view grows one node at a time to its network's size, and each engine
/// has one: a doubling `Vec` would leave up to half of its last allocation
/// unused (at 10,000 nodes, a capacity of 16,384), and copy everything on
/// each doubling. Here at most one segment is partly empty, and growing
/// copies nothing. Indexing costs one more indirection.
#[derive(Debug)]
pub struct Segments<T> {
    segments: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Segments<T> {
    fn default() -> Self {
        Segments {
            segments: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Segments<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends an element.
    pub fn push(&mut self, value: T) {
        if self.len.is_multiple_of(SEGMENT) {
            self.segments.push(Vec::with_capacity(SEGMENT));
        }
        if let Some(last) = self.segments.last_mut() {
            last.push(value);
            self.len += 1;
        }
    }

    /// Removes the last element; a segment left empty goes with it, so a
    /// view that shrank gives its memory back.
    pub fn pop(&mut self) -> Option<T> {
        let last = self.segments.last_mut()?;
        let value = last.pop()?;
        self.len -= 1;
        if last.is_empty() {
            self.segments.pop();
        }
        Some(value)
    }

    /// The element at `i`, if any.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.segments.get(i / SEGMENT)?.get(i % SEGMENT)
    }

    /// The element at `i`, if any, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.segments.get_mut(i / SEGMENT)?.get_mut(i % SEGMENT)
    }

    /// Every element in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.segments.iter().flatten()
    }

    /// Every element in order, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.segments.iter_mut().flatten()
    }
}

impl<T> Index<usize> for Segments<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.segments[i / SEGMENT][i % SEGMENT]
    }
}

impl<T> IndexMut<usize> for Segments<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.segments[i / SEGMENT][i % SEGMENT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_index_across_segments_and_allocations_are_exact() {
        let mut s = Segments::default();
        for i in 0..(3 * SEGMENT + 5) {
            s.push(i);
        }
        assert_eq!(s.len(), 3 * SEGMENT + 5);
        assert_eq!(s[0], 0);
        assert_eq!(s[SEGMENT], SEGMENT);
        assert_eq!(s.get(3 * SEGMENT + 4), Some(&(3 * SEGMENT + 4)));
        assert_eq!(s.get(3 * SEGMENT + 5), None);
        s[7] = 70;
        assert_eq!(s.iter().nth(7), Some(&70));
        assert!(s
            .iter()
            .copied()
            .eq((0..3 * SEGMENT + 5).map(|i| if i == 7 { 70 } else { i })));
        for v in s.iter_mut() {
            *v += 1;
        }
        assert_eq!(s[1], 2);
        assert!(s.segments.iter().all(|seg| seg.capacity() == SEGMENT));
        for _ in 0..(SEGMENT + 6) {
            assert!(s.pop().is_some());
        }
        assert_eq!((s.len(), s.segments.len()), (2 * SEGMENT - 1, 2));
    }
}
