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

/// Ids made by [`sim_id`], with their seeds, so that [`Network::start`] can
/// give a peer its signing key from its id alone. Process-wide because
/// ids are made before (and apart from) any network; deterministic, since
/// an id is a function of its index.
fn sim_keys() -> &'static Mutex<HashMap<PeerId, [u8; 32], FixedState>> {
    static KEYS: OnceLock<Mutex<HashMap<PeerId, [u8; 32], FixedState>>> = OnceLock::new();
    KEYS.get_or_init(Mutex::default)
}

/// The id of simulated peer `i`: the Ed25519 public key of [`sim_seed`]`(i)`,
/// so that the peer signs its registers as a real node does.
pub fn sim_id(i: usize) -> PeerId {
    let seed = sim_seed(i);
    let id = Signer::from_seed(seed).id();
    sim_keys()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, seed);
    id
}

/// The index `i` of an id made by [`sim_id`]`(i)`, for printing peers as
/// `#i`; `None` for other ids.
pub fn sim_index(id: &PeerId) -> Option<usize> {
    let keys = sim_keys().lock().unwrap_or_else(|e| e.into_inner());
    let seed = keys.get(id)?;
    let mut index = [0u8; 8];
    index.copy_from_slice(&seed[..8]);
    usize::try_from(u64::from_be_bytes(index)).ok()
}

/// The signing key of an id made by [`sim_id`]; `None` for other ids, whose
/// engines then run unsigned (as JavaScript origins).
pub fn sim_signer(id: &PeerId) -> Option<Signer> {
    let keys = sim_keys().lock().unwrap_or_else(|e| e.into_inner());
    keys.get(id).map(|seed| Signer::from_seed(*seed))
}
