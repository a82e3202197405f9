//! The set of keys a unique constraint holds, compact. The keys of a
//! constraint on fixed-width columns (integers, dates, decimals, ...) all
//! have one length, and of each only the bytes that differ between keys
//! are stored: the row format spends a null byte and eight value bytes on
//! a `bigint`, and the keys of a table seldom use more than three of them.
//! Keys that store at most 4 bytes live in the hash table itself (4 bytes
//! and a control byte per bucket); longer ones sit back to back in one
//! buffer and the table holds their slot numbers. TPC-H lineitem's
//! `(l_orderkey, l_linenumber)` keys are 18 bytes of which 4 vary, so a
//! key costs 6 to 11 bytes, where a boxed key cost 32 bytes, a 16-byte
//! pointer and the table's control byte. Keys of varying length (text
//! columns) are boxed.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;

/// A set of byte strings.
#[derive(Clone)]
pub struct KeySet {
    hasher: DefaultHashBuilder,
    store: Store,
}

#[derive(Clone)]
enum Store {
    Fixed(Fixed),
    /// Keys of varying width.
    Boxed(HashTable<Box<[u8]>>),
}

/// Keys of one width. A byte not in `positions` is the same in every key
/// (the template's); a key stores the bytes at `positions`. Up to
/// [`INLINE`] of them are kept in the hash table itself; more go to slot
/// `s` of `bytes`, `bytes[s * packed..][..packed]`, and the table holds
/// `s`. Slots freed by removals are reused.
#[derive(Clone)]
struct Fixed {
    /// The first key of the set (empty until there is one).
    template: Vec<u8>,
    /// The template in little-endian words of 8 bytes (the last padded
    /// with zeros), and per word a mask of the bytes every key shares.
    words: Vec<u64>,
    same: Vec<u64>,
    /// The key bytes that vary, in order.
    positions: Vec<usize>,
    /// Bytes stored per key: `positions.len()`.
    packed: usize,
    bytes: Vec<u8>,
    slots: HashTable<u32>,
    free: Vec<u32>,
    /// Slots handed out (freed ones included).
    used: u32,
    /// Keys expected, to size `bytes` once the width is known.
    expected: usize,
}

/// Keys of at most this many stored bytes live in the hash table itself
/// (little-endian, in place of a slot number): no buffer, and a probe
/// reads one place in memory instead of two.
const INLINE: usize = 4;

/// A stored key of at most [`INLINE`] bytes as a table entry.
fn inline(stored: &[u8]) -> u32 {
    stored.iter().rev().fold(0, |w, &b| w << 8 | u32::from(b))
}

/// Whether table entry `entry` is the stored key `stored`.
fn holds(bytes: &[u8], packed: usize, entry: u32, stored: &[u8]) -> bool {
    if packed <= INLINE {
        entry == inline(stored)
    } else {
        bytes[entry as usize * packed..][..packed] == *stored
    }
}

/// The hash of table entry `entry`: that of its stored key.
fn entry_hash(bytes: &[u8], packed: usize, entry: u32, hasher: &DefaultHashBuilder) -> u64 {
    if packed <= INLINE {
        hasher.hash_one(&entry.to_le_bytes()[..packed])
    } else {
        hasher.hash_one(&bytes[entry as usize * packed..][..packed])
    }
}

/// Room to pack a key without allocating, for keys up to 64 bytes.
type Buffer = smallvec::SmallVec<[u8; 64]>;

/// `bytes` as little-endian words of 8 bytes, the last padded with zeros.
fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(word)
    })
}

impl Fixed {
    /// A set whose first key is `template` (stored as no bytes at all).
    fn starting_with(&mut self, template: &[u8]) {
        self.template.clear();
        self.template.extend_from_slice(template);
        self.words = words(template).collect();
        self.same = vec![u64::MAX; self.words.len()];
        self.positions.clear();
        self.packed = 0;
        self.bytes.clear();
        self.free.clear();
        self.used = 0;
    }

    fn find(&self, hash: u64, stored: &[u8]) -> bool {
        let (bytes, packed) = (&self.bytes, self.packed);
        self.slots
            .find(hash, |&e| holds(bytes, packed, e, stored))
            .is_some()
    }

    fn remove(&mut self, hash: u64, stored: &[u8]) -> bool {
        let (bytes, packed) = (&self.bytes, self.packed);
        match self
            .slots
            .find_entry(hash, |&e| holds(bytes, packed, e, stored))
        {
            Ok(entry) => {
                let slot = entry.remove().0;
                if packed > INLINE {
                    self.free.push(slot);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// The bytes of `key` that are stored, into `out`; false when `key`
    /// differs from every stored key outside `positions` (or in width).
    fn pack(&self, key: &[u8], out: &mut Buffer) -> bool {
        if key.len() != self.template.len() {
            return false;
        }
        // Word by word, and then only the bytes that vary, gathered in
        // registers and written 8 at a time: bytes written one by one and
        // then read as a word (a stack copy of the tail, the hash reading
        // the packed key) cannot be forwarded from the writes, and each
        // such read stalled (a tenth of a load's CPU, perf).
        let mut whole = key.chunks_exact(8);
        for ((chunk, &word), &same) in (&mut whole).zip(&self.words).zip(&self.same) {
            let chunk = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            if (chunk ^ word) & same != 0 {
                return false;
            }
        }
        let tail = whole.remainder();
        if !tail.is_empty() {
            let last = self.words.len() - 1;
            let chunk = tail.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b));
            if (chunk ^ self.words[last]) & self.same[last] != 0 {
                return false;
            }
        }
        out.clear();
        out.resize(self.packed.next_multiple_of(8), 0);
        for (chunk, positions) in out.chunks_exact_mut(8).zip(self.positions.chunks(8)) {
            let word = (positions.iter().rev()).fold(0, |w, &at| w << 8 | u64::from(key[at]));
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out.truncate(self.packed);
        true
    }

    /// The whole key of table entry `entry`, into `out` (which starts as
    /// the template).
    fn unpack(&self, entry: u32, out: &mut [u8]) {
        let entry_bytes = entry.to_le_bytes();
        let stored = if self.packed <= INLINE {
            &entry_bytes[..self.packed]
        } else {
            &self.bytes[entry as usize * self.packed..][..self.packed]
        };
        for (&byte, &at) in stored.iter().zip(&self.positions) {
            out[at] = byte;
        }
    }

    /// Stores the bytes where `key` differs from the template too, and
    /// repacks every key for them.
    fn widen(&mut self, key: &[u8], hasher: &DefaultHashBuilder) {
        let positions: Vec<usize> = (key.iter().zip(&self.template).enumerate())
            .filter(|(i, (byte, kept))| byte != kept || self.positions.contains(i))
            .map(|(i, _)| i)
            .collect();
        let mut same = vec![u64::MAX; self.words.len()];
        for &at in &positions {
            same[at / 8] &= !(0xff << (at % 8 * 8));
        }
        let mut wider = Fixed {
            packed: positions.len(),
            positions,
            same,
            words: self.words.clone(),
            template: self.template.clone(),
            bytes: Vec::new(),
            slots: HashTable::with_capacity(self.expected.max(self.slots.len())),
            free: Vec::new(),
            used: 0,
            expected: self.expected,
        };
        if wider.packed > INLINE {
            wider
                .bytes
                .reserve(wider.packed * self.expected.max(self.slots.len() + 1));
        }
        let mut whole = self.template.clone();
        let mut packed = Buffer::new();
        for &slot in self.slots.iter() {
            self.unpack(slot, &mut whole);
            assert!(
                wider.pack(&whole, &mut packed),
                "a stored key differs only where keys vary"
            );
            wider.add(hasher.hash_one(&packed[..]), &packed, hasher);
        }
        *self = wider;
    }

    /// Whether another key can be added (slots are numbered by `u32`).
    fn has_room(&self) -> bool {
        self.packed <= INLINE || !self.free.is_empty() || self.used < u32::MAX
    }

    /// Adds a packed key known to be absent.
    fn add(&mut self, hash: u64, stored: &[u8], hasher: &DefaultHashBuilder) {
        let entry = if self.packed <= INLINE {
            inline(stored)
        } else if let Some(slot) = self.free.pop() {
            self.bytes[slot as usize * self.packed..][..self.packed].copy_from_slice(stored);
            slot
        } else {
            self.bytes.extend_from_slice(stored);
            self.used += 1;
            self.used - 1
        };
        let (bytes, packed) = (&self.bytes, self.packed);
        self.slots
            .insert_unique(hash, entry, |&e| entry_hash(bytes, packed, e, hasher));
    }
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
            store: Store::Fixed(Fixed {
                template: Vec::new(),
                words: Vec::new(),
                same: Vec::new(),
                positions: Vec::new(),
                packed: 0,
                bytes: Vec::new(),
                slots: HashTable::with_capacity(keys),
                free: Vec::new(),
                used: 0,
                expected: keys,
            }),
        }
    }

    pub fn len(&self) -> usize {
        match &self.store {
            Store::Fixed(fixed) => fixed.slots.len(),
            Store::Boxed(keys) => keys.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.store {
            Store::Fixed(fixed) => {
                let mut packed = Buffer::new();
                if !fixed.pack(key, &mut packed) {
                    return false;
                }
                fixed.find(self.hasher.hash_one(&packed[..]), &packed)
            }
            Store::Boxed(keys) => keys
                .find(self.hasher.hash_one(key), |k| k.as_ref() == key)
                .is_some(),
        }
    }

    /// Adds `key`; false when it was there already.
    pub fn insert(&mut self, key: &[u8]) -> bool {
        if let Store::Fixed(fixed) = &mut self.store {
            if fixed.slots.is_empty() && !key.is_empty() {
                // The first key (again): the template, nothing to store.
                fixed.starting_with(key);
            }
            if key.len() == fixed.template.len() && !key.is_empty() {
                let mut packed = Buffer::new();
                if !fixed.pack(key, &mut packed) {
                    fixed.widen(key, &self.hasher);
                    assert!(fixed.pack(key, &mut packed), "widened for the key");
                }
                let hash = self.hasher.hash_one(&packed[..]);
                if fixed.find(hash, &packed) {
                    return false;
                }
                if fixed.has_room() {
                    fixed.add(hash, &packed, &self.hasher);
                    return true;
                }
                self.box_keys();
            } else {
                self.box_keys();
            }
        }
        let Store::Boxed(keys) = &mut self.store else {
            unreachable!("box_keys leaves boxed keys")
        };
        let hash = self.hasher.hash_one(key);
        if keys.find(hash, |k| k.as_ref() == key).is_some() {
            return false;
        }
        let hasher = &self.hasher;
        keys.insert_unique(hash, key.into(), |k| hasher.hash_one(k.as_ref()));
        true
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match &mut self.store {
            Store::Fixed(fixed) => {
                let mut packed = Buffer::new();
                if !fixed.pack(key, &mut packed) {
                    return false;
                }
                fixed.remove(self.hasher.hash_one(&packed[..]), &packed)
            }
            Store::Boxed(keys) => {
                match keys.find_entry(self.hasher.hash_one(key), |k| k.as_ref() == key) {
                    Ok(entry) => {
                        entry.remove();
                        true
                    }
                    Err(_) => false,
                }
            }
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
            Store::Fixed(fixed) => {
                let mut whole = fixed.template.clone();
                for &slot in fixed.slots.iter() {
                    fixed.unpack(slot, &mut whole);
                    f(&whole);
                }
            }
            Store::Boxed(keys) => keys.iter().for_each(|k| f(k)),
        }
    }

    /// Bytes the set takes (its buffers' capacity).
    pub fn memory_size(&self) -> usize {
        match &self.store {
            Store::Fixed(fixed) => {
                fixed.bytes.capacity()
                    + fixed.slots.capacity() * 5
                    + fixed.free.capacity() * 4
                    + fixed.template.capacity()
            }
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
            // Up to five bytes vary: more than the table holds inline, so
            // keys go to slots and freed slots are reused.
            key[width / 2] = (value % 3) as u8;
            key[1] = (value % 5) as u8;
            key[0] = (value % 7) as u8;
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

    /// Keys that come to differ in more bytes: every key is repacked to
    /// store them, the freed slots too, and the set stays a set.
    #[test]
    fn stores_only_the_bytes_that_vary() {
        // Two bigints as the row format writes them: a null byte, then
        // eight bytes big-endian with the sign bit flipped.
        let key = |a: u64, b: u64| {
            let mut k = [1u8; 18];
            k[1..9].copy_from_slice(&(a ^ 1 << 63).to_be_bytes());
            k[10..18].copy_from_slice(&(b ^ 1 << 63).to_be_bytes());
            k
        };
        let mut set = KeySet::with_capacity(100_000);
        let mut model = HashSet::new();
        for i in 0..100_000u64 {
            assert!(set.insert(&key(i, i % 7)));
            model.insert(key(i, i % 7));
        }
        // Three bytes of the first column vary, one of the second: four
        // bytes, kept in the table itself.
        assert!(
            set.memory_size() < 100_000 * (2 * 5 + 1),
            "{}",
            set.memory_size()
        );
        assert!(!set.insert(&key(99, 99 % 7)));
        assert!(!set.contains(&key(99, 5)) && !set.contains(&key(1 << 40, 0)));
        for i in (0..100_000u64).step_by(3) {
            assert!(set.remove(&key(i, i % 7)));
            model.remove(&key(i, i % 7));
        }
        assert!(!set.remove(&key(0, 0)));
        // A byte that never varied, with freed slots to reuse.
        for i in 0..10u64 {
            assert!(set.insert(&key(i << 40, 0)));
            model.insert(key(i << 40, 0));
        }
        assert!(!set.insert(&key(3 << 40, 0)));
        let mut all = HashSet::new();
        set.for_each(|k| {
            assert!(all.insert(<[u8; 18]>::try_from(k).unwrap()));
        });
        assert_eq!(all, model);
        assert!(model.iter().all(|k| set.contains(k)));
        // Emptied, the set starts again from its next key.
        for k in &model {
            assert!(set.remove(k));
        }
        assert!(set.is_empty() && set.insert(b"abc") && set.insert(b"abd"));
        assert!(set.contains(b"abc") && !set.contains(&key(1, 1)));
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
        // 3 bytes of key that vary, 4 of slot number and 1 of control
        // per bucket (at most 8 buckets per 7 keys, rounded up to a power
        // of two).
        assert!(
            set.memory_size() < 100_000 * (3 + 2 * 5 + 1),
            "{}",
            set.memory_size()
        );
    }
}
