"""Which OSDP readers on a line answered: whole reply packets seen in the bytes the control
panel reads (pure, no libosdp, no I/O).

On a multidrop line one control panel restarts a silent or refused reader on its own
(libosdp's disable/enable of that PD) while the others keep running. libosdp keeps the ID a
PD sent before such a restart, so its ID cannot tell a reader that answered and was refused
from one that is absent; a reply packet under that reader's address since the restart can.

A reply packet: SOM 0x53, the address with the reply bit 0x80, the packet's length (2 bytes,
LSB first), a control byte (bit 2: a CRC-16 ends the packet, else an 8-bit checksum). Only
packets whose CRC or checksum is right are counted, so bytes that happen to look like a
header inside encrypted data count for nothing.
"""

from __future__ import annotations

import binascii
from collections import Counter

SOM = 0x53
REPLY_BIT = 0x80
MIN_PACKET, MAX_PACKET = 7, 1440  # header + reply code + checksum; libosdp's packet buffer


def crc16(data: bytes) -> int:
    """CRC-16/AUG-CCITT (poly 0x1021, init 0x1D0F), the CRC of OSDP packets: the standard
    library's CRC-CCITT started at OSDP's initial value."""
    return binascii.crc_hqx(data, 0x1D0F)


def _intact(packet: bytes) -> bool:
    if packet[4] & 0x04:
        return crc16(packet[:-2]) == packet[-2] | packet[-1] << 8
    return (-sum(packet[:-1])) & 0xFF == packet[-1]


class ReplyCounter:
    """Feed it what the line delivered; ``count(address)`` is the number of intact reply
    packets from that address so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._seen: Counter[int] = Counter()

    def count(self, address: int) -> int:
        return self._seen[address]

    def feed(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while True:
            start = buf.find(SOM)
            if start < 0:
                buf.clear()
                return
            del buf[:start]
            if len(buf) < 5:
                return
            length = buf[2] | buf[3] << 8
            if not buf[1] & REPLY_BIT or not MIN_PACKET <= length <= MAX_PACKET:
                del buf[:1]  # a command (no reply bit), a stray 0x53: look further on
                continue
            if len(buf) < length:
                return  # the rest is still on the wire
            if _intact(bytes(buf[:length])):
                self._seen[buf[1] & ~REPLY_BIT & 0xFF] += 1
                del buf[:length]
            else:
                del buf[:1]
