//! The JavaScript stack's byte vectors of `docs/TRANSPORT.md` (captured
//! from hypercore 10 over TCP), shared by the tests of every layer so that
//! each vector is written once.

/// Bytes from hex; whitespace (line breaks in long vectors) is ignored.
pub fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// Seed `00..0n` of 8.1.
pub fn seed(n: u8) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[31] = n;
    seed
}

/// 8.2: the handshake hash with the fixed ephemerals.
pub const HANDSHAKE_HASH: &str = "7cdc63c1ef715ec62390f1170536cddbc4ee222671c591324222cb173c158eb8
    b3f1c78adada873c6bcb26d65a028d18c46c4a01a01866d363f48a5dfa3d048b";

/// 8.4 a: the initiator's protomux open of `hypercore/alpha`.
pub const OPEN_A: &str = "0001010f6879706572636f72652f616c70686120a67fe48738df92be11239fb4
    69cdb4c7b766f1982ca52ed63ad169ecde0c998b01d4d8d2f7318d02ad4fc71f
    1c16644e726bdaf3ac5ffddb63585f589f4e1e4952";

/// 8.4 c: the initiator's first batch: sync, then three hyper-presence
/// extensions.
pub const BATCH_C: &str = "0000010500070000005d090e68797065722d70726573656e63650a204cb5abf6
    ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba29100218ff
    01222400031a207422b9887598068e32c4448a949adb290d0f4e35b9e01b0ee5
    f1a1e600fe26743f09000a204cb5abf6ad79fbf5abbccafcc269d85cd2651ed4
    b885b5869f241aedf0a5ba29100318ff012214000512107b226e616d65223a22
    616c696365227d2c09000a204cb5abf6ad79fbf5abbccafcc269d85cd2651ed4
    b885b5869f241aedf0a5ba291004180022020001";
