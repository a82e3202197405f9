//! The set of keys a unique constraint holds, compact. The keys of a
//! constraint on fixed-width columns (integers, dates, decimals, ...) all
//! have one length: they are stored back to back in one buffer, and the
//! hash table holds only their slot numbers (4 bytes, and a control byte),
//! so a key costs its own bytes and 6 to 10 more, where a boxed key costs
//! its bytes rounded up to the allocator's size class, a 16-byte pointer
//! and the table's control byte. Keys of varying length (text columns)
//! are boxed.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// A set of byte strings.
pub struct KeySet {
    hasher: DefaultHashBuilder,
    store: Store,
}

enum Store {
    /// Keys of `width` bytes each: slot `s` is `bytes[s * width..][..width]`.
    /// Slots freed by removals are reused. `width` is 0 until the first key.
    Fixed {
        width: usize,
        bytes: Vec<u8>,
        slots: HashTable<u32>,
        free: Vec<u32>,
        /// Keys expected, to size `bytes` once the width is known.
        expected: usize,
    },
    /// Keys of varying width.
    Boxed(HashTable<Box<[u8]>>),
}

fn slot_key(bytes: &[u8], width: usize, slot: u32) -> &[u8] {
    &bytes[slot as usize * width..][..width]
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet::with_capacity(0)
    }
}

impl KeySet {
    pub fn new() -> KeySet {
        KeySet::default()
    }

    /// An empty set with room for `keys` keys.
    pub fn with_capacity(keys: usize) -> KeySet {
        KeySet {
            hasher: DefaultHashBuilder::default(),
            store: Store::Fixed {
                width: 0,
                bytes: Vec::new(),
                slots: HashTable::with_capacity(keys),
                free: Vec::new(),
                expected: keys,
            },
        }
    }

    pub fn len(&self) -> usize {
        match &self.store {
            Store::Fixed { slots, .. } => slots.len(),
            Store::Boxed(keys) => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        match &self.store {
            Store::Fixed {
                width,
                bytes,
                slots,
                ..
            } => {
                key.len() == *width
                    && slots
                        .find(hash, |&s| slot_key(bytes, *width, s) == key)
                        .is_some()
            }
            Store::Boxed(keys) => keys.find(hash, |k| k.as_ref() == key).is_some(),
        }
    }

    /// Adds `key`; false when it was there already.
    pub fn insert(&mut self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        if let Store::Fixed {
            width,
            bytes,
            slots,
            free,
            expected,
        } = &mut self.store
        {
            if *width == 0 && slots.is_empty() && !key.is_empty() {
                *width = key.len();
                bytes.clear();
                bytes.reserve(expected.saturating_mul(*width));
                free.clear();
            }
            let fits = *width > 0
                && key.len() == *width
                && (!free.is_empty() || bytes.len() / *width < u32::MAX as usize);
            if fits {
                let width = *width;
                if slots
                    .find(hash, |&s| slot_key(bytes, width, s) == key)
                    .is_some()
                {
                    return false;
                }
                let slot = match free.pop() {
                    Some(slot) => {
                        bytes[slot as usize * width..][..width].copy_from_slice(key);
                        slot
                    }
                    None => {
                        bytes.extend_from_slice(key);
                        (bytes.len() / width - 1) as u32
                    }
                };
                let hasher = &self.hasher;
                slots.insert_unique(hash, slot, |&s| hasher.hash_one(slot_key(bytes, width, s)));
                return true;
            }
            self.box_keys();
        }
        let Store::Boxed(keys) = &mut self.store else {
            unreachable!("box_keys leaves boxed keys")
        };
        if keys.find(hash, |k| k.as_ref() == key).is_some() {
            return false;
        }
        let hasher = &self.hasher;
        keys.insert_unique(hash, key.into(), |k| hasher.hash_one(k.as_ref()));
        true
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        match &mut self.store {
            Store::Fixed {
                width,
                bytes,
                slots,
                free,
                ..
            } => {
                if key.len() != *width {
                    return false;
                }
                match slots.find_entry(hash, |&s| slot_key(bytes, *width, s) == key) {
                    Ok(entry) => {
                        free.push(entry.remove().0);
                        true
                    }
                    Err(_) => false,
                }
            }
            Store::Boxed(keys) => match keys.find_entry(hash, |k| k.as_ref() == key) {
                Ok(entry) => {
                    entry.remove();
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// Adds every key of `other` (taken over whole when this set is
    /// empty).
    pub fn extend(&mut self, other: KeySet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        other.for_each(|key| {
            self.insert(key);
        });
    }

    /// Calls `f` with every key, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match &self.store {
            Store::Fixed {
                width,
                bytes,
                slots,
                ..
            } => slots.iter().for_each(|&s| f(slot_key(bytes, *width, s))),
            Store::Boxed(keys) => keys.iter().for_each(|k| f(k)),
        }
    }

    /// Bytes the set takes (its buffers' capacity).
    pub fn memory_size(&self) -> usize {
        match &self.store {
            Store::Fixed {
                bytes, slots, free, ..
            } => bytes.capacity() + slots.capacity() * 5 + free.capacity() * 4,
            Store::Boxed(keys) => {
                keys.capacity() * (std::mem::size_of::<Box<[u8]>>() + 1)
                    + keys.iter().map(|k| k.len()).sum::<usize>()
            }
        }
    }

    /// Moves fixed-width keys into boxes, for a key of another width.
    fn box_keys(&mut self) {
        let mut keys: HashTable<Box<[u8]>> = HashTable::with_capacity(self.len());
        let hasher = &self.hasher;
        self.for_each(|key| {
            keys.insert_unique(hasher.hash_one(key), key.into(), |k| {
                hasher.hash_one(k.as_ref())
            });
        });
        self.store = Store::Boxed(keys);
    }
}

impl Clone for KeySet {
    fn clone(&self) -> Self {
        let store = match &self.store {
            Store::Fixed {
                width,
                bytes,
                slots,
                free,
                expected,
            } => Store::Fixed {
                width: *width,
                bytes: bytes.clone(),
                slots: slots.clone(),
                free: free.clone(),
                expected: *expected,
            },
            Store::Boxed(keys) => Store::Boxed(keys.clone()),
        };
        KeySet {
            hasher: self.hasher.clone(),
            store,
        }
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("keys", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::KeySet;
    use std::collections::HashSet;

    /// Random operations against std's HashSet, with keys of one width
    /// and then of another (which moves the set to boxed keys).
    #[test]
    fn behaves_as_a_hash_set_of_byte_strings() {
        let mut set = KeySet::with_capacity(16);
        let mut model: HashSet<Vec<u8>> = HashSet::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000u64 {
            let width = if round < 15_000 {
                9
            } else {
                3 + (next() % 12) as usize
            };
            let value = next() % 500;
            let mut key = vec![1u8; width];
            key[width - 2..].copy_from_slice(&(value as u16).to_be_bytes());
            match next() % 3 {
                0 | 1 => assert_eq!(set.insert(&key), model.insert(key.clone()), "insert"),
                _ => assert_eq!(set.remove(&key), model.remove(&key), "remove"),
            }
            assert_eq!(set.len(), model.len());
            let probe = vec![1u8; width];
            assert_eq!(set.contains(&probe), model.contains(&probe));
            if round == 14_999 {
                // Fixed-width still: slots freed by removals were reused.
                let mut seen = 0;
                set.for_each(|k| {
                    assert!(model.contains(k));
                    seen += 1;
                });
                assert_eq!(seen, model.len());
            }
        }
        let mut copy = KeySet::new();
        copy.insert(b"another width");
        copy.extend(set.clone());
        let mut all = HashSet::new();
        copy.for_each(|k| {
            all.insert(k.to_vec());
        });
        all.remove(&b"another width"[..]);
        assert_eq!(all, model);
        assert!(!set.contains(b""));
        let mut empty = KeySet::new();
        assert!(empty.insert(b""));
        assert!(!empty.insert(b""));
        assert!(empty.contains(b"") && empty.insert(b"x") && empty.len() == 2);
    }

    #[test]
    fn fixed_width_keys_take_their_bytes_and_a_few_more() {
        let mut set = KeySet::with_capacity(100_000);
        for i in 0..100_000u64 {
            let mut key = [1u8; 14];
            key[1..9].copy_from_slice(&i.to_be_bytes());
            assert!(set.insert(&key));
        }
        assert!(!set.insert(&{
            let mut key = [1u8; 14];
            key[1..9].copy_from_slice(&7u64.to_be_bytes());
            key
        }));
        // 14 bytes of key, 4 of slot number and 1 of control per bucket
        // (at most 8 buckets per 7 keys, rounded up to a power of two).
        assert!(
            set.memory_size() < 100_000 * (14 + 2 * 5 + 1),
            "{}",
            set.memory_size()
        );
    }
}
