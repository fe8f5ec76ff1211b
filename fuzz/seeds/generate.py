#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/seeds/TARGET/NAME) from the byte
vectors captured from the JavaScript stack (PROTOCOL.md's test vectors,
docs/TRANSPORT.md section 8) and from our wire extensions (stamps, edge lists,
feature bits), framed the way each target reads its input. Run it from
anywhere; it rewrites the seed directories. Python 3 standard library only."""

import hashlib
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def h(text):
    return bytes.fromhex("".join(text.split()))


# ---- protobuf (the presence message and flood packet) ----------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, value):
    return varint(number << 3 | 2) + varint(len(value)) + value


def stamp(number, incarnation, version):
    return field_bytes(number, field_varint(1, incarnation) + field_varint(2, version))


def packet(origin, number, ttl, data):
    return (field_bytes(1, origin) + field_varint(2, number) + field_varint(3, ttl)
            + field_bytes(4, data))


def entry(peer, connected_to=(), data=None, stamps=(), raw=False):
    value = b"".join(field_bytes(0, p) for p in connected_to)
    if data is not None:
        value += field_bytes(1, data)
    for number, inc, ver in stamps:
        value += stamp(number, inc, ver)
    # Between our peers (feature bit 4) the key is the raw id, field 3.
    key = field_bytes(3, peer) if raw else field_bytes(1, peer.hex().encode())
    body = key + field_bytes(2, value)
    return field_bytes(1, body)


def ident(byte):
    return bytes([byte]) * 32


# PROTOCOL.md, "Test vectors".
STATE = h("000512107b226e616d65223a22616c696365227d")
CONNECTED = h("00031a201111111111111111111111111111111111111111111111111111111111111111")
DISCONNECTED = h("00041a202222222222222222222222222222222222222222222222222222222222222222")
BOOTSTRAP_REQUEST = h("0001")
BOOTSTRAP_RESPONSE = h(
    "00020a6f0a40616161616161616161616161616161616161616161616161616161616161616161"
    "6161616161616161616161616161616161616161616161616161616161122b0220bbbbbbbbbbbb"
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0a077b2261223a317d")
PACKET = h("0a20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa100718ff01"
           "2214000512107b226e616d65223a22616c696365227d")

# TRANSPORT.md 8.4 c: the packets inside the first batch's three extensions.
A = h("4cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba29")
B = h("7422b9887598068e32c4448a949adb290d0f4e35b9e01b0ee5f1a1e600fe2674")
JS_CONNECTED = packet(A, 2, 255, h("00031a20") + B)
JS_STATE = packet(A, 3, 255, STATE)
JS_REQUEST = packet(A, 4, 0, h("0001"))

# Our extensions: stamps (8), whole edge lists (9), features (10), raw ids.
STAMPED_CONNECTED = (field_varint(0, 3) + field_bytes(3, ident(0x11)) + stamp(8, 1, 2)
                     + field_bytes(9, ident(0x11)) + field_bytes(9, ident(0x12)))
STAMPED_DISCONNECTED = (field_varint(0, 4) + field_bytes(3, ident(0x11)) + stamp(8, 1, 3)
                        + field_bytes(9, ident(0x12)))
STAMPED_STATE = field_varint(0, 5) + field_bytes(2, b'{"name":"carol"}') + stamp(8, 2, 0)
BATCHES_REQUEST = field_varint(0, 1) + field_varint(10, 1)
STAMPED_RESPONSE = (field_varint(0, 2)
                    + entry(ident(0x02), [ident(0x01), ident(0x11)], b'{"n":2}',
                            [(8, 1, 1), (9, 1, 1)])
                    + entry(ident(0x11), [ident(0x02)], b'{"n":17}', [(8, 5, 0), (9, 5, 2)])
                    + entry(ident(0x12), [], None, [(8, 1, 0)])
                    + entry(ident(0x13)))
RAW_IDS_REQUEST = field_varint(0, 1) + field_varint(10, 1 | 2 | 4)
RAW_RESPONSE = (field_varint(0, 2)
                + entry(ident(0x02), [ident(0x01)], b'{"n":2}', [(8, 1, 1), (9, 1, 1)], raw=True)
                + entry(ident(0x13), raw=True))
OTHER_KIND = field_varint(0, 9) + field_bytes(2, b"future")

MESSAGES = {
    "state": STATE, "connected": CONNECTED, "disconnected": DISCONNECTED,
    "bootstrap-request": BOOTSTRAP_REQUEST, "bootstrap-response": BOOTSTRAP_RESPONSE,
    "stamped-connected": STAMPED_CONNECTED, "stamped-disconnected": STAMPED_DISCONNECTED,
    "stamped-state": STAMPED_STATE, "batches-request": BATCHES_REQUEST,
    "stamped-response": STAMPED_RESPONSE, "raw-ids-request": RAW_IDS_REQUEST,
    "raw-response": RAW_RESPONSE, "other-kind": OTHER_KIND,
}

PACKETS = {
    "protocol-md": PACKET, "js-connected": JS_CONNECTED, "js-state": JS_STATE,
    "js-request": JS_REQUEST,
    "stamped-connected": packet(ident(0x11), 1, 6, STAMPED_CONNECTED),
    "stamped-response": packet(ident(0x02), 1, 0, STAMPED_RESPONSE),
    "raw-response": packet(ident(0x02), 1, 0, RAW_RESPONSE),
}


# ---- engine_receive: ctl || u16 LE length || packet -------------------------

def engine(*items):
    out = b""
    for neighbour, steps, pkt in items:
        out += bytes([steps << 1 | neighbour]) + struct.pack("<H", len(pkt)) + pkt
    return out


ME, N0, N1 = ident(0x01), ident(0x02), ident(0x03)
ENGINE = {
    "javascript-neighbour": engine(
        (0, 0, packet(N0, 1, 255, h("00031a20") + ME)),
        (0, 0, packet(N0, 2, 255, STATE)),
        (0, 1, packet(N0, 3, 0, BOOTSTRAP_REQUEST)),
        (1, 2, packet(ident(0xaa), 7, 255, STATE)),
        (1, 0, packet(N1, 1, 0, BOOTSTRAP_RESPONSE)),
        (0, 30, packet(ident(0x11), 1, 3, DISCONNECTED))),
    "stamped-neighbours": engine(
        (0, 0, packet(N0, 1, 0, BATCHES_REQUEST)),
        (0, 0, packet(N0, 2, 0, STAMPED_RESPONSE)),
        (1, 1, packet(ident(0x11), 1, 6, STAMPED_CONNECTED)),
        (1, 1, packet(ident(0x11), 2, 6, STAMPED_STATE)),
        (0, 4, packet(ident(0x11), 3, 6, STAMPED_DISCONNECTED)),
        (1, 0, packet(N1, 1, 6, OTHER_KIND))),
    "raw-ids-neighbour": engine(
        (0, 0, packet(N0, 1, 0, RAW_IDS_REQUEST)),
        (0, 0, packet(N0, 2, 0, RAW_RESPONSE)),
        (1, 1, packet(N1, 1, 0, RAW_IDS_REQUEST)),
        (1, 1, packet(N1, 2, 0, STAMPED_RESPONSE))),
    "own-origin": engine(
        (0, 0, packet(ME, 9, 3, STAMPED_STATE)),
        (1, 0, packet(ME, 10, 3, STAMPED_CONNECTED))),
    "protocol-md": engine((0, 0, PACKET)),
}


# ---- transport (TRANSPORT.md section 8) ------------------------------------

F1 = h("200000fd50b8e3b144ea244fbf7737f550bc8dd0c2650bbc1aada833ca17ff8dbf329b")
F2 = h("600000fde4fba030ad002f7c2f7d4c331f49d13fb0ec747eceebec634f1ff4cbca9defaf3b42c3"
       "350c038850c1d3d45fabf51ba4e08a5ce48e7b980b0f659daa8fe1d63a9ecbfdd7e6d72a029b1b"
       "d0ece695e5ce015c649071e51fd4d63eae7e29504e")
F3 = h("400000a443a3a20f0367a6ec4b3eb9381ead3557d7c1e1a72b76b65892776675159b6068490ef7"
       "b491d9492b85f32e472b98a93d36dea7c097947f76687e58871e5ed6")
HEADER_I = (h("380000") + h("78b6f19a079611b5d42b0c80396569313bc83a97a44eb02f03b8c395e25aba5c")
            + bytes(range(0xa0, 0xb8)))
HEADER_R = (h("380000") + h("7022e093d1374fc5260f055f5e1ec39b7aeb208d172c87313ae273be884c1c71")
            + bytes(range(0xc0, 0xd8)))
FRAME_OPEN = h("6600004d1c9d265797cf83c97d0c995b71f51e28df0068235a6c5d8b1429fd0e543f7c9051"
               "20655c81c8642f623b161fc85b044f1426df1902538c87c10f52be40a66edcbd9b74b65552"
               "90e134aaf7ea6288fbe60b4aec69e2d452e726f601b5ae4bd4e6fc93b31d59")
FRAME_KEEPALIVE = h("1100006d9da64e9aa449a900e07a99cc55d06309")

OPEN = h("0001010f6879706572636f72652f616c70686120a67fe48738df92be11239fb469cdb4c7b766f1"
         "982ca52ed63ad169ecde0c998b01d4d8d2f7318d02ad4fc71f1c16644e726bdaf3ac5ffddb6358"
         "5f589f4e1e4952")
BATCH = h("0000010500070000005d090e68797065722d70726573656e63650a204cb5abf6ad79fbf5abbcca"
          "fcc269d85cd2651ed4b885b5869f241aedf0a5ba29100218ff01222400031a207422b9887598068e"
          "32c4448a949adb290d0f4e35b9e01b0ee5f1a1e600fe26743f09000a204cb5abf6ad79fbf5abbcca"
          "fcc269d85cd2651ed4b885b5869f241aedf0a5ba29100318ff012214000512107b226e616d65223a"
          "22616c696365227d2c09000a204cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241a"
          "edf0a5ba291004180022020001")
EXT_CACHED = h("0109000a204cb5abf6ad79fbf5abbccafcc269d85cd2651ed4b885b5869f241aedf0a5ba2910"
               "0618ff012214000512107b226e616d65223a22616c696365227d")
EXT_EXAMPLE = h("0109076578616d706c650568656c6c6f")
EXT_NAMED = EXT_CACHED[:2] + b"\x0e" + b"hyper-presence" + EXT_CACHED[3:].replace(
    h("1006"), h("1007"), 1)
SYNC = h("010000070000")
CLOSE = h("000301")
REJECT = h("000201")
UNKNOWN_TYPE = h("010f") + b"?"


def chunks(*frames):
    """`len: u8 || frame[len]` for each frame (protomux, noise_handshake)."""
    out = b""
    for frame in frames:
        assert len(frame) < 256
        out += bytes([len(frame)]) + frame
    return out


PROTOMUX = {
    "js-batch": chunks(BATCH),
    "js-extensions": chunks(EXT_CACHED, EXT_EXAMPLE, EXT_NAMED, SYNC, UNKNOWN_TYPE),
    "js-open-close": chunks(OPEN, CLOSE, REJECT),
    "keepalive-then-batch": chunks(b"", BATCH, EXT_CACHED),
}

# channel: mode || hlen || handshake || { kind || len || body }*. The
# remote's genuine open for the target's core key (3 × 32) and handshake
# hash (9 × 64): its role is the responder's.
CORE_KEY, HANDSHAKE_HASH = bytes([3]) * 32, bytes([9]) * 64


def b256(msg, key=b""):
    return hashlib.blake2b(msg, key=key, digest_size=32).digest()


NS_RESPONDER = b256(b256(b"hypercore") + bytes([2]))
assert NS_RESPONDER.hex().startswith("0438492d")
CAPABILITY = b256(NS_RESPONDER + CORE_KEY, key=HANDSHAKE_HASH)


def channel(mode, handshake, *messages):
    out = bytes([mode, len(handshake)]) + handshake
    for kind, body in messages:
        assert len(body) < 256
        out += bytes([kind, len(body)]) + body
    return out


CHANNEL = {
    "paired-js-messages": channel(0, b"", (0, SYNC[2:]), (9, EXT_NAMED[2:]),
                                  (9, EXT_CACHED[2:]), (9, EXT_EXAMPLE[2:]),
                                  (9, EXT_CACHED[2:])),
    "own-handshake": channel(1, b"\x01" + CAPABILITY, (9, EXT_NAMED[2:]), (9, b"\x00")),
    "bad-capability": channel(1, OPEN[-33:], (9, EXT_NAMED[2:])),
}

# noise_handshake: mode (bit 0 = initiator) || { len || message }*.
NOISE = {
    "responder-f1-f3": bytes([0]) + chunks(F1[3:], F3[3:]),
    "initiator-f2": bytes([1]) + chunks(F2[3:]),
}

def sends(*messages):
    """`op 0 || len: u8 || message` for each message (the genuine peer sends)."""
    return b"".join(b"\x00" + chunks(m) for m in messages)


# secret_stream: mode (bit 0 = initiator, bit 1 = paired with a genuine
# peer, bits 2.. the chunk sizes) || bytes, or, paired, { op || len || bytes }*.
SECRET_STREAM = {
    "responder-whole": bytes([0xfc]) + F1 + F3 + HEADER_I + FRAME_OPEN + FRAME_KEEPALIVE,
    "responder-bytewise": bytes([0x00]) + F1 + F3 + HEADER_I,
    "initiator": bytes([0x0d]) + F2 + HEADER_R + FRAME_KEEPALIVE,
    "paired-responder": bytes([0x22]) + sends(OPEN, b"", BATCH, EXT_CACHED),
    "paired-initiator-injected": (bytes([0xff]) + sends(SYNC, b"") + b"\x01"
                                  + chunks(FRAME_KEEPALIVE) + sends(EXT_EXAMPLE)),
}

CORPORA = {
    "decode_message": MESSAGES,
    "decode_packet": PACKETS,
    "engine_receive": ENGINE,
    "protomux": PROTOMUX,
    "channel": CHANNEL,
    "noise_handshake": NOISE,
    "secret_stream": SECRET_STREAM,
}

for target, seeds in CORPORA.items():
    directory = os.path.join(HERE, target)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
