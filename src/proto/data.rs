//! Peer data codecs: how the value a peer advertises becomes bytes on the
//! wire and back.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a value could not be encoded, or bytes could not be decoded, as peer data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// Turns the application's peer data into bytes and back. The codec must be
/// the same on every peer of a topic; the original's default is JSON.
pub trait DataCodec: Clone {
    /// The application's view of one peer's data.
    type Value: Clone + PartialEq + fmt::Debug;

    /// Encodes a value for the wire.
    fn encode(&self, value: &Self::Value) -> Result<Vec<u8>, DataError>;

    /// Decodes bytes a remote peer advertised. Must not panic on any input:
    /// the bytes come from the network.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Value, DataError>;

    /// Whether [`DataCodec::decode`] would accept `bytes`, for when nobody
    /// wants the value (no one listens for events): a codec that can tell
    /// without building the value may say so more cheaply. Same rules as
    /// `decode`.
    fn check(&self, bytes: &[u8]) -> Result<(), DataError> {
        self.decode(bytes).map(drop)
    }
}

/// JSON peer data, byte-compatible with the original's default encoding
/// (`JSON.stringify`: compact, keys in insertion order). `T` is any serde
/// type; the default, [`serde_json::Value`], accepts whatever peers send.
pub struct Json<T = serde_json::Value>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON codec for `T`.
    pub const fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json::new()
    }
}

impl<T> fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Json")
    }
}

impl<T> DataCodec for Json<T>
where
    T: Serialize + DeserializeOwned + Clone + PartialEq + fmt::Debug,
{
    type Value = T;

    fn encode(&self, value: &T) -> Result<Vec<u8>, DataError> {
        serde_json::to_vec(value).map_err(|e| DataError(e.to_string()))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, DataError> {
        serde_json::from_slice(bytes).map_err(|e| DataError(e.to_string()))
    }
}

/// Opaque bytes, for applications with an encoding of their own (and for the
/// simulator, which need not parse anything).
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl DataCodec for Raw {
    type Value = Bytes;

    fn encode(&self, value: &Bytes) -> Result<Vec<u8>, DataError> {
        Ok(value.to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bytes, DataError> {
        Ok(Bytes::copy_from_slice(bytes))
    }

    /// Any bytes are raw data: nothing to copy to find out.
    fn check(&self, _: &[u8]) -> Result<(), DataError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_encodes_like_json_stringify() {
        let codec = Json::<serde_json::Value>::new();
        // Insertion order, not sorted order: `JSON.stringify` keeps it.
        let value = json!({"name": "alice", "age": 3, "a": [1, "x"]});
        assert_eq!(
            codec.encode(&value).unwrap(),
            br#"{"name":"alice","age":3,"a":[1,"x"]}"#
        );
        assert_eq!(
            codec.decode(br#"{"name":"alice"}"#).unwrap(),
            json!({"name": "alice"})
        );
    }

    #[test]
    fn json_refuses_garbage_with_an_error() {
        let codec = Json::<serde_json::Value>::new();
        assert!(codec.decode(b"{not json").is_err());
        assert!(codec.decode(&[0xff, 0xfe]).is_err());
        // `check` says what `decode` says, without the value.
        assert!(codec.check(b"{not json").is_err());
        assert!(codec.check(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn json_decodes_into_a_typed_struct() {
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Card {
            name: String,
        }
        let codec = Json::<Card>::new();
        let card = Card { name: "bob".into() };
        let bytes = codec.encode(&card).unwrap();
        assert_eq!(codec.decode(&bytes).unwrap(), card);
        assert!(codec.decode(br#"{"nom":"bob"}"#).is_err());
    }

    #[test]
    fn raw_passes_bytes_through() {
        let bytes = Bytes::from_static(&[0, 1, 255]);
        assert_eq!(Raw.encode(&bytes).unwrap(), vec![0, 1, 255]);
        assert_eq!(Raw.decode(&[9]).unwrap(), Bytes::from_static(&[9]));
        assert!(Raw.check(&[0xff]).is_ok());
    }
}
