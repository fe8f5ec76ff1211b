//! A list of numbers kept in two bytes each while every one fits, in four
//! once one does not.
//!
//! A view whose ids go through a shared table keeps two numbers per node
//! (its slot's number in the table, and each number's slot here); in a
//! simulation of ten thousand peers those are 10^8 of each, and no number
//! is above ten thousand. Two bytes instead of four save 4 bytes of every
//! known node, and the lists, read at random for every id a packet names,
//! take half the cache.

/// Marks an empty place: [`Packed::get`] gives `u32::MAX` for it.
pub(super) const NONE: u32 = u32::MAX;

/// Numbers by position, narrow while they fit (see the module's
/// documentation). Growing takes at least an eighth more room: the lists
/// grow an element at a time to the size of a view.
#[derive(Debug)]
pub(super) enum Packed {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Default for Packed {
    fn default() -> Self {
        Packed::Narrow(Vec::new())
    }
}

/// The narrow form of [`NONE`]; no other number is kept narrow from it up.
const NARROW_NONE: u16 = u16::MAX;

impl Packed {
    pub fn len(&self) -> usize {
        match self {
            Packed::Narrow(v) => v.len(),
            Packed::Wide(v) => v.len(),
        }
    }

    /// The number at `i`, if `i` is in the list ([`NONE`] for an empty
    /// place).
    #[inline]
    pub fn get(&self, i: usize) -> Option<u32> {
        match self {
            Packed::Narrow(v) => v.get(i).map(|&n| widen(n)),
            Packed::Wide(v) => v.get(i).copied(),
        }
    }

    /// Sets the number at `i`, which is in the list.
    pub fn set(&mut self, i: usize, n: u32) {
        self.fit(n);
        match self {
            Packed::Narrow(v) => v[i] = narrow(n),
            Packed::Wide(v) => v[i] = n,
        }
    }

    /// Makes the list `len` long, new places holding `fill`; growing by at
    /// least an eighth of the room held.
    pub fn resize(&mut self, len: usize, fill: u32) {
        self.fit(fill);
        match self {
            Packed::Narrow(v) => grow(v, len, narrow(fill)),
            Packed::Wide(v) => grow(v, len, fill),
        }
    }

    /// Appends `n`.
    pub fn push(&mut self, n: u32) {
        let len = self.len();
        self.resize(len + 1, n);
    }

    /// Sets the number at `i`, one past the end included.
    pub fn put(&mut self, i: usize, n: u32) {
        if i < self.len() {
            self.set(i, n);
        } else {
            self.push(n);
        }
    }

    /// Drops the places from `len` on and gives back what is not used.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Packed::Narrow(v) => {
                v.truncate(len);
                v.shrink_to_fit();
            }
            Packed::Wide(v) => {
                v.truncate(len);
                v.shrink_to_fit();
            }
        }
    }

    /// Room held, in numbers.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        match self {
            Packed::Narrow(v) => v.capacity(),
            Packed::Wide(v) => v.capacity(),
        }
    }

    /// Every number, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Goes wide if `n` does not fit narrow.
    fn fit(&mut self, n: u32) {
        if let Packed::Narrow(v) = self {
            if n != NONE && n >= u32::from(NARROW_NONE) {
                let mut wide = Vec::with_capacity(v.capacity());
                wide.extend(v.iter().map(|&n| widen(n)));
                *self = Packed::Wide(wide);
            }
        }
    }
}

fn widen(n: u16) -> u32 {
    if n == NARROW_NONE {
        NONE
    } else {
        u32::from(n)
    }
}

/// `n` narrow; only for numbers that fit (see [`Packed::fit`]).
fn narrow(n: u32) -> u16 {
    if n == NONE {
        NARROW_NONE
    } else {
        n as u16
    }
}

/// The least room a list takes when it grows: small ones would otherwise
/// grow by one number at a time.
const MIN_ROOM: usize = 64;

fn grow<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    if len > v.capacity() {
        let want = len.max(v.capacity() + v.capacity() / 8).max(MIN_ROOM);
        v.reserve_exact(want - v.len());
    }
    v.resize(len, fill);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_two_bytes_until_one_does_not_fit_and_read_the_same_after() {
        let mut p = Packed::default();
        p.resize(3, NONE);
        p.set(1, 7);
        p.push(65_534);
        assert!(matches!(p, Packed::Narrow(_)));
        assert_eq!(p.iter().collect::<Vec<_>>(), [NONE, 7, NONE, 65_534]);
        p.set(2, 65_535);
        assert!(matches!(p, Packed::Wide(_)), "u16::MAX marks none narrow");
        assert_eq!(p.iter().collect::<Vec<_>>(), [NONE, 7, 65_535, 65_534]);
        p.push(1 << 20);
        assert_eq!((p.get(4), p.get(5)), (Some(1 << 20), None));
        p.truncate(2);
        assert_eq!(p.iter().collect::<Vec<_>>(), [NONE, 7]);
        p.put(1, 8);
        p.put(2, 9);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [NONE, 8, 9],
            "in place, then one past"
        );
    }

    #[test]
    fn a_list_grown_one_by_one_holds_at_most_an_eighth_more_room() {
        let mut p = Packed::default();
        for n in 0..10_000 {
            p.push(n);
        }
        let Packed::Narrow(v) = &p else {
            panic!("narrow");
        };
        assert!(v.capacity() <= 10_000 + 10_000 / 8 + 1, "{}", v.capacity());
    }
}
