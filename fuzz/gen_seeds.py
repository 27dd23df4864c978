#!/usr/bin/env python3
"""Writes the small seed corpus under corpus/<target>/seed-*.

The bytes are postcard, written by hand: enum variants and integers are LEB128 varints
(signed ones zigzag), strings and byte strings a varint length then the bytes, a frame a 4-byte
little-endian length then the body. Variant numbers follow procman/src/wire/message.rs
(Request, Reply) and procman/src/error.rs (WireError).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    assert n >= 0
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def frame(body):
    return struct.pack("<I", len(body)) + body


# Request variants.
HELLO, CREATE, CALL, REPR, GETVALUE, INCREF, DECREF, TRANSIT, CLAIM, PIN, UNPIN, DEBUGINFO, SHUTDOWN, PING = range(14)

hello = varint(HELLO) + varint(0x0123456789ABCDEF0123456789ABCDEF)
create = varint(CREATE) + string("Counter") + string(bytes([5]))
call = varint(CALL) + varint(1) + string("incr") + string(bytes([2]))
claim = varint(CLAIM) + varint(3) + varint(300)
unpin = varint(UNPIN) + varint(7) + bytes([1])
ping = varint(PING)
decref = varint(DECREF) + varint(1)

# Reply: Ok(bytes) = 0, Err(WireError) = 1. WireError::Remote = 6, IndexOutOfRange = 17.
reply_ok = varint(0) + string(bytes([1, 2, 3]))
reply_err = varint(1) + varint(6) + string("Counter") + string("incr") + string("boom")
error_index = varint(17) + varint(zigzag(-5)) + varint(3)
# Arguments (u64, String, Option<Duration>): Duration is { secs: u64, nanos: u32 }.
args = varint(7) + string("key") + bytes([1]) + varint(2) + varint(500_000_000)

# Handshake: the server hello (magic and a challenge) followed by a verdict of 1 and a MAC;
# and a busy manager's refusal.
handshake_ok_shape = b"procman2" + bytes(range(32)) + bytes([1]) + bytes(32)
handshake_busy = b"procbusy"

# A deep value as call arguments: a linked list (variant 1 = Cons, a byte, the tail; 0 = Nil)
# 300 levels deep, past the decoding depth limit.
deep_list = bytes([1, 7]) * 300 + bytes([0])

seeds = {
    "frames": {
        "seed-call": frame(call),
        "seed-hello-then-create": frame(hello) + frame(create),
        "seed-mixed": frame(ping) + frame(decref) + frame(claim) + frame(unpin) + frame(varint(SHUTDOWN)),
        "seed-garbage": bytes([0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x13, 0x37]),
    },
    "messages": {
        "seed-call": call,
        "seed-reply-ok": reply_ok,
        "seed-reply-err": reply_err,
        "seed-error-index": error_index,
        "seed-args": args,
        "seed-deep-list": deep_list,
    },
    "handshake": {
        "seed-server-hello-and-proof": handshake_ok_shape,
        "seed-zeros-64": bytes(64),
        "seed-garbage": b"GET / HTTP/1.1\r\n\r\n",
        "seed-busy": handshake_busy,
    },
    # Read as a sealed stream (nothing opens), then sealed frame by frame and read back.
    "sealed_frames": {
        "seed-call": frame(call),
        "seed-mixed": frame(ping) + frame(decref) + frame(claim) + frame(unpin),
        "seed-partial-tail": frame(call) + frame(create)[:7],
        "seed-deep-call": frame(varint(CALL) + varint(1) + string("length") + string(deep_list)),
        "seed-garbage": bytes([0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x13, 0x37]),
    },
}

for target, files in seeds.items():
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        print(f"corpus/{target}/{name}: {len(data)} bytes")
