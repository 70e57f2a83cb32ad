//! Every case the console has seen, in a slab: a `Vec` in arrival order
//! plus an id index. The list's sorted and filtered orders are `u32` slots
//! into it, so a pass over 40,000 cases is a walk over integers with no
//! hashing and no string copies (see `benches/console.rs`).

use std::collections::HashMap;

use super::app::CaseView;

/// A case's place in the slab; stable for the life of the console (until a
/// reset).
pub type Slot = u32;

#[derive(Debug, Default)]
pub struct CaseStore {
    slots: Vec<CaseView>,
    index: HashMap<String, Slot>,
}

impl CaseStore {
    pub fn get(&self, id: &str) -> Option<&CaseView> {
        self.index.get(id).map(|s| &self.slots[*s as usize])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut CaseView> {
        self.index.get(id).map(|s| &mut self.slots[*s as usize])
    }

    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.index.get(id).copied()
    }

    /// The case in `slot`. Slots come only from this store, so one is
    /// always valid.
    pub fn at(&self, slot: Slot) -> &CaseView {
        &self.slots[slot as usize]
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Adds a case; its slot is the next one.
    pub fn insert(&mut self, case: CaseView) -> Slot {
        let slot = self.slots.len() as Slot;
        self.index.insert(case.case.id.clone(), slot);
        self.slots.push(case);
        slot
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every case with its slot, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &CaseView)> {
        self.slots.iter().enumerate().map(|(i, c)| (i as Slot, c))
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
    }
}

impl std::ops::Index<&str> for CaseStore {
    type Output = CaseView;

    fn index(&self, id: &str) -> &CaseView {
        self.get(id)
            .unwrap_or_else(|| panic!("no case {}", crate::text::inert(id)))
    }
}

impl std::ops::Index<&String> for CaseStore {
    type Output = CaseView;

    fn index(&self, id: &String) -> &CaseView {
        &self[id.as_str()]
    }
}
