//! Protobuf wire primitives: varints, tags, length-delimited fields.
