//! Simulated peers' identities: real Ed25519 keys from fixed seeds, so that
//! simulated engines sign as real nodes do and every run repeats exactly.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use foldhash::fast::FixedState;

use crate::proto::{PeerId, Signer};

/// The secret seed of simulated peer `i`: fixed, so runs are repeatable.
pub fn sim_seed(i: usize) -> [u8; 32] {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    seed
}

/// Every simulated identity made so far, by index and by id, so that
/// [`Network::start`](super::Network::start) can give a peer its signing
/// key from its id alone. Process-wide because ids are made before (and
/// apart from) any network; deterministic, since an id is a function of its
/// index. Keeping the keys spares the curve arithmetic of deriving one
/// again on every call (a test asks for `sim_id(i)` at every step).
#[derive(Default)]
struct Keys {
    ids: HashMap<usize, PeerId, FixedState>,
    keys: HashMap<PeerId, (usize, Signer), FixedState>,
}

fn sim_keys() -> std::sync::MutexGuard<'static, Keys> {
    static KEYS: OnceLock<Mutex<Keys>> = OnceLock::new();
    KEYS.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The id of simulated peer `i`: the Ed25519 public key of [`sim_seed`]`(i)`,
/// so that the peer signs its registers as a real node does.
pub fn sim_id(i: usize) -> PeerId {
    let mut keys = sim_keys();
    if let Some(id) = keys.ids.get(&i) {
        return *id;
    }
    let signer = Signer::from_seed(sim_seed(i));
    let id = signer.id();
    keys.ids.insert(i, id);
    keys.keys.insert(id, (i, signer));
    id
}

/// The index `i` of an id made by [`sim_id`]`(i)`, for printing peers as
/// `#i`; `None` for other ids.
pub fn sim_index(id: &PeerId) -> Option<usize> {
    sim_keys().keys.get(id).map(|(i, _)| *i)
}

/// The signing key of an id made by [`sim_id`]; `None` for other ids, whose
/// engines then run unsigned (as JavaScript origins).
pub fn sim_signer(id: &PeerId) -> Option<Signer> {
    sim_keys().keys.get(id).map(|(_, signer)| signer.clone())
}
