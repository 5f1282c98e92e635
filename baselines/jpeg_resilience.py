"""JPEG restart intervals at the receiver: find them, drop the damaged ones, conceal what they held.

A baseline JPEG saved with restart markers (Pillow's ``restart_marker_rows`` /
``restart_marker_blocks``) splits its entropy-coded scan into intervals of ``Ri`` MCUs separated
by ``RST0``…``RST7`` markers (``0xFFD0``–``0xFFD7``, cycling). Each interval starts with fresh DC
predictions on a byte boundary, so it decodes on its own. Pillow does not say which intervals were
damaged, so the receiver does it here:

1. :func:`parse_jpeg` reads the header (frame, Huffman tables, restart interval) up to the scan;
2. :func:`interval_spans` finds each interval's bytes in the received stream from the RST markers
   that lie in *trusted* bytes (bytes of LDPC codewords whose parity checks hold) and counts the
   intervals hidden in untrusted stretches from the markers' cyclic numbers; an interval that
   touches an untrusted byte is lost;
3. :func:`rebuild` writes a valid stream: the intact intervals as received and, for each lost one,
   the whole MCUs its trusted first bytes hold (found by Huffman-decoding them,
   :func:`decodable_mcus`) then filler MCUs (the cheapest codes of the stream's own Huffman tables),
   so Huffman decoding stays in step and Pillow decodes every intact MCU exactly;
4. :func:`~baselines.concealment.conceal` fills the pixels of the MCUs not received intact by
   linear interpolation between the nearest intact pixels above and below.

libjpeg's chroma upsampling ("fancy" triangle filter) mixes chroma across the border of an MCU, so
the one pixel row and column next to a lost MCU is concealed as well
(:func:`~baselines.concealment.lost_mask` dilates by one pixel); every other pixel equals the clean
decode.

Example::

    >>> import io, numpy as np
    >>> from PIL import Image

from .concealment import conceal, lost_mask
    >>> rng = np.random.default_rng(0)
    >>> img = np.clip(np.cumsum(rng.normal(0, 4, (64, 64, 3)), axis=0) + 128, 0, 255).astype(np.uint8)
    >>> buf = io.BytesIO(); Image.fromarray(img).save(buf, "JPEG", quality=80, restart_marker_rows=1)
    >>> data = buf.getvalue()
    >>> layout = parse_jpeg(data)
    >>> layout.num_intervals, layout.mcu_size
    (4, (16, 16))
    >>> trusted = np.ones(len(data), bool)
    >>> spans = interval_spans(data, layout, trusted)
    >>> trusted[spans[2][0] + 3] = False                     # a byte of interval 2 is unreliable
    >>> lost = [i for i, s in enumerate(interval_spans(data, layout, trusted)) if s is None]
    >>> lost
    [2]
"""
from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .concealment import conceal, lost_mask

#: Start-of-frame markers of Huffman-coded sequential JPEG (baseline and extended), which this
#: module handles; progressive and arithmetic-coded streams are refused.
SEQUENTIAL_SOF = (0xC0, 0xC1)


class JpegStructureError(ValueError):
    """The stream is not a sequential JPEG with restart intervals that this module can split."""


@dataclass(frozen=True)
class ScanComponent:
    """One colour component of the scan: ``blocks = (h, v)`` 8x8 blocks per MCU, its DC and AC
    Huffman tables as ``{symbol: (code, length)}``."""

    blocks: tuple[int, int]
    dc: dict[int, tuple[int, int]]
    ac: dict[int, tuple[int, int]]


@dataclass(frozen=True)
class JpegLayout:
    """What the receiver needs of a JPEG header to split and rebuild its scan.

    :ivar size: ``(H, W)`` in pixels.
    :ivar mcu_size: ``(height, width)`` of an MCU in pixels (16 x 16 for 4:2:0).
    :ivar restart_interval: MCUs per restart interval (``Ri`` of the DRI segment; 0: none).
    :ivar scan_start: offset of the first entropy-coded byte (just after the SOS segment).
    :ivar components: the scan's components in MCU order.
    """

    size: tuple[int, int]
    mcu_size: tuple[int, int]
    restart_interval: int
    scan_start: int
    components: tuple[ScanComponent, ...]

    @property
    def mcu_grid(self) -> tuple[int, int]:
        """``(rows, columns)`` of MCUs covering the image."""
        (h, w), (mh, mw) = self.size, self.mcu_size
        return -(-h // mh), -(-w // mw)

    @property
    def num_mcus(self) -> int:
        rows, cols = self.mcu_grid
        return rows * cols

    @property
    def num_intervals(self) -> int:
        """Restart intervals in the scan (1 when the stream has no restart markers)."""
        return -(-self.num_mcus // self.restart_interval) if self.restart_interval else 1

    def interval_mcus(self, index: int) -> range:
        """The MCU indices (raster order) of interval ``index``."""
        ri = self.restart_interval or self.num_mcus
        return range(index * ri, min((index + 1) * ri, self.num_mcus))


def _huffman_codes(counts: bytes, symbols: bytes) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes (JPEG Annex C) → ``{symbol: (code, length)}``."""
    codes, code, pos = {}, 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[pos]] = (code, length)
            code, pos = code + 1, pos + 1
        code <<= 1
    return codes


def parse_jpeg(data: bytes) -> JpegLayout:
    """Header of a sequential Huffman JPEG, up to and including its (single) scan header.

    :raises JpegStructureError: not such a JPEG, a truncated or inconsistent header.
    """
    if data[:2] != b"\xff\xd8":
        raise JpegStructureError("no SOI marker")
    pos, tables, frame, ri = 2, {}, None, 0
    try:
        while True:
            while data[pos] != 0xFF or data[pos + 1] == 0xFF:  # fill bytes before a marker
                if data[pos] != 0xFF:
                    raise JpegStructureError(f"expected a marker at byte {pos}")
                pos += 1
            marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
            body = data[pos + 4:pos + 2 + length]
            if len(body) != length - 2:
                raise JpegStructureError("truncated header")
            if marker in SEQUENTIAL_SOF:
                frame = _parse_frame(body)
            elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                raise JpegStructureError(f"unsupported frame type 0x{marker:02X} (only sequential Huffman)")
            elif marker == 0xC4:
                tables.update(_parse_tables(body))
            elif marker == 0xDD:
                ri = struct.unpack(">H", body[:2])[0]
            elif marker == 0xDA:
                return _scan_layout(body, frame, tables, ri, pos + 2 + length)
            pos += 2 + length
    except (IndexError, struct.error, KeyError) as e:
        raise JpegStructureError(f"malformed JPEG header: {e!r}") from None


def _parse_frame(body: bytes) -> tuple[tuple[int, int], dict[int, tuple[int, int]]]:
    h, w, n = struct.unpack(">HHB", body[1:6])
    comps = {body[6 + 3 * i]: (body[7 + 3 * i] >> 4, body[7 + 3 * i] & 15) for i in range(n)}
    if h == 0 or w == 0 or not comps:
        raise JpegStructureError("empty frame")
    return (h, w), comps


def _parse_tables(body: bytes) -> dict[tuple[int, int], dict[int, tuple[int, int]]]:
    out, pos = {}, 0
    while pos < len(body):
        tc_th, counts = body[pos], body[pos + 1:pos + 17]
        total = sum(counts)
        out[(tc_th >> 4, tc_th & 15)] = _huffman_codes(counts, body[pos + 17:pos + 17 + total])
        pos += 17 + total
    return out


def _scan_layout(body: bytes, frame, tables, ri: int, scan_start: int) -> JpegLayout:
    if frame is None:
        raise JpegStructureError("scan before frame header")
    size, comps = frame
    n = body[0]
    ids = [(body[1 + 2 * i], body[2 + 2 * i]) for i in range(n)]
    if n != len(comps):
        raise JpegStructureError("several scans (non-interleaved) are not supported")
    hmax = max(h for h, _ in comps.values())
    vmax = max(v for _, v in comps.values())
    components = tuple(ScanComponent(comps[cid] if n > 1 else (1, 1), tables[(0, sel >> 4)], tables[(1, sel & 15)])
                       for cid, sel in ids)
    mcu = (8 * vmax, 8 * hmax) if n > 1 else (8, 8)
    return JpegLayout(size, mcu, ri, scan_start, components)


def restart_markers(data: bytes, start: int, stop: int) -> np.ndarray:
    """Offsets ``p`` in ``[start, stop - 1)`` where ``data[p:p+2]`` is an RST marker, ``[M]`` int64."""
    arr = np.frombuffer(data, dtype=np.uint8)[start:stop]
    hits = np.nonzero((arr[:-1] == 0xFF) & (arr[1:] >= 0xD0) & (arr[1:] <= 0xD7))[0]
    return hits + start


def interval_spans(data: bytes, layout: JpegLayout, trusted: np.ndarray) -> list[tuple[int, int] | None]:
    """Byte range ``(start, stop)`` of each restart interval's entropy-coded data, or ``None`` where
    the interval is lost (see :func:`locate_intervals`)."""
    return locate_intervals(data, layout, trusted)[0]


def locate_intervals(data: bytes, layout: JpegLayout,
                     trusted: np.ndarray) -> tuple[list[tuple[int, int] | None], dict[int, int]]:
    """Where each restart interval's entropy-coded data lies in a received stream.

    The scan runs from ``layout.scan_start`` to the EOI marker that ends the stream (its length is
    known out of band). RST markers are believed only in trusted bytes. Between two believed
    markers, a stretch with untrusted bytes hides as many intervals as the markers' cyclic numbers
    say (1 to 8); all of them are lost, and the first one's start is known. If the count does not
    come out right at the end (eight or more intervals lost in one stretch, or an undetected error),
    only the intervals that can be counted from either end of the scan up to the first untrusted
    stretch are kept.

    :input trusted: ``[len(data)]`` bool, the bytes that come from codewords whose parity checks hold.
    :returns: per interval (``layout.num_intervals``) its byte range ``(start, stop)`` if intact,
        else ``None``; and ``{index: start offset}`` of the lost intervals whose start is known.
    """
    start, stop, n = layout.scan_start, len(data) - 2, layout.num_intervals
    ok = np.asarray(trusted, dtype=bool)
    marks = [int(p) for p in restart_markers(data, start, stop) if ok[p] and ok[p + 1]]
    # Stretches between believed boundaries: (first byte, end byte, RST number ending it or None).
    bounds = [start] + [p + 2 for p in marks]
    ends = [(p, data[p + 1] - 0xD0) for p in marks] + [(stop, None)]
    stretches = [(a, b, r, bool(ok[a:b].all())) for a, (b, r) in zip(bounds, ends)]
    spans: list[tuple[int, int] | None] = [None] * n
    starts: dict[int, int] = {}
    index = 0
    for a, b, r, clean in stretches:
        count = n - index if r is None else (r - index) % 8 + 1
        if count < 1 or (clean and count != 1):
            break
        if clean:
            spans[index] = (a, b)
        else:
            starts[index] = a
        index += count
    else:
        if index == n:
            return spans, starts
    return _spans_from_both_ends(stretches, n)


def _spans_from_both_ends(stretches, n: int) -> tuple[list[tuple[int, int] | None], dict[int, int]]:
    spans: list[tuple[int, int] | None] = [None] * n
    starts: dict[int, int] = {}
    for i, (a, b, _, clean) in enumerate(stretches[:n]):
        if not clean:
            starts[i] = a
            break
        spans[i] = (a, b)
    for j, (a, b, _, clean) in enumerate(reversed(stretches[-n:])):
        if not clean:
            break
        spans[n - 1 - j] = (a, b)
    return spans, starts


class _BitWriter:
    def __init__(self):
        self.out, self.acc, self.nbits = bytearray(), 0, 0

    def put(self, code: int, length: int) -> None:
        self.acc, self.nbits = (self.acc << length) | code, self.nbits + length
        while self.nbits >= 8:
            self.nbits -= 8
            byte = (self.acc >> self.nbits) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)  # byte stuffing
        self.acc &= (1 << self.nbits) - 1

    def flush(self) -> bytes:
        if self.nbits:
            self.put((1 << (8 - self.nbits)) - 1, 8 - self.nbits)  # pad with ones (T.81 F.1.2.3)
        return bytes(self.out)


class _OutOfBits(Exception):
    pass


class _BitReader:
    def __init__(self, segment: bytes):
        self.bits = np.unpackbits(np.frombuffer(segment.replace(b"\xff\x00", b"\xff"), dtype=np.uint8)).tolist()
        self.pos = 0

    def take(self, n: int) -> int:
        if self.pos + n > len(self.bits):
            raise _OutOfBits
        value = 0
        for bit in self.bits[self.pos:self.pos + n]:
            value = (value << 1) | bit
        self.pos += n
        return value

    def symbol(self, table: dict[tuple[int, int], int]) -> int:
        code = 0
        for length in range(1, 17):
            code = (code << 1) | self.take(1)
            if (length, code) in table:
                return table[(length, code)]
        raise _OutOfBits  # no such code: the data is not what was sent


def decodable_mcus(layout: JpegLayout, segment: bytes, max_mcus: int) -> tuple[int, list[int]]:
    """How many whole MCUs the start of a restart interval holds, by Huffman-decoding it.

    :param segment: the interval's first bytes (byte-stuffed, as in the stream), e.g. those before
        its first untrusted byte.
    :returns: the number of MCUs decoded completely, and their bits (unstuffed, 0/1).
    """
    reader = _BitReader(segment)
    tables = [({(n, c): s for s, (c, n) in comp.dc.items()}, {(n, c): s for s, (c, n) in comp.ac.items()})
              for comp in layout.components]
    done, end = 0, 0
    try:
        for done in range(max_mcus + 1):
            end = reader.pos
            if done == max_mcus:
                break
            for comp, (dc, ac) in zip(layout.components, tables):
                for _ in range(comp.blocks[0] * comp.blocks[1]):
                    reader.take(reader.symbol(dc))
                    k = 1
                    while k < 64:
                        run, size = divmod(reader.symbol(ac), 16)
                        if size == 0 and run != 15:
                            break  # end of block
                        k += run + 1
                        reader.take(size)
                    if k > 64:
                        raise _OutOfBits
    except _OutOfBits:
        pass
    return done, reader.bits[:end]


def filler_interval(layout: JpegLayout, num_mcus: int, prefix: list[int] = ()) -> bytes:
    """Entropy-coded bytes of a restart interval that any decoder accepts: the bits ``prefix``
    (whole MCUs received intact, unstuffed) then ``num_mcus`` filler MCUs, each block the shortest
    DC code (extra bits alternating the sign, so DC stays bounded) and an end-of-block. The
    filler's pixels do not matter: :func:`~baselines.concealment.conceal` replaces them.

    :raises JpegStructureError: an AC table without an end-of-block code.
    """
    w = _BitWriter()
    for bit in prefix:
        w.put(bit, 1)
    for comp_index, comp in enumerate(layout.components):
        if 0x00 not in comp.ac:
            raise JpegStructureError(f"component {comp_index}: AC table has no end-of-block code")
    for mcu in range(num_mcus):
        for comp in layout.components:
            size, (code, length) = min(comp.dc.items(), key=lambda kv: (kv[1][1] + kv[0], kv[0]))
            for block in range(comp.blocks[0] * comp.blocks[1]):
                w.put(code, length)
                if size:
                    w.put((1 << size) - 1 if (mcu + block) % 2 else 0, size)  # +(2^s-1), -(2^s-1)
                w.put(*comp.ac[0x00])
    return w.flush()


def rebuild(data: bytes, layout: JpegLayout, trusted: np.ndarray) -> tuple[bytes, list[int], np.ndarray]:
    """A decodable stream from a received one: the header, each intact interval as received and,
    for each lost one, the whole MCUs of its trusted first bytes (where its start is known) then
    :func:`filler_interval`; RST markers renumbered, then EOI.

    :input trusted: ``[len(data)]`` bool, bytes from codewords whose parity checks hold.
    :returns: the stream, the lost intervals, and the ``[M]`` int64 indices (raster order) of the
        MCUs that were not received intact.
    """
    spans, starts = locate_intervals(data, layout, trusted)
    parts, lost, lost_mcus = [data[:layout.scan_start]], [], []
    for i, span in enumerate(spans):
        if i:
            parts.append(bytes([0xFF, 0xD0 + (i - 1) % 8]))
        if span is not None:
            parts.append(data[span[0]:span[1]])
            continue
        mcus = layout.interval_mcus(i)
        kept, prefix = 0, []
        if i in starts:
            a = starts[i]
            first_bad = a + int(np.argmin(trusted[a:])) if not trusted[a:].all() else len(data) - 2
            kept, prefix = decodable_mcus(layout, data[a:first_bad], len(mcus))
        parts.append(filler_interval(layout, len(mcus) - kept, prefix))
        lost.append(i)
        lost_mcus.extend(mcus[kept:])
    parts.append(b"\xff\xd9")
    return b"".join(parts), lost, np.asarray(lost_mcus, dtype=np.int64)


def decode_concealed(data: bytes, trusted: np.ndarray,
                     size: tuple[int, int]) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Received JPEG with restart markers → ``[H, W, 3]`` uint8 image, the lost intervals and the
    ``[M]`` MCUs concealed (:func:`rebuild`, Pillow, :func:`~baselines.concealment.conceal`).

    :input trusted: ``[len(data)]`` bool, bytes from codewords whose parity checks hold.
    :raises JpegStructureError: the header is untrusted or unusable, every MCU is lost, or Pillow
        refuses the rebuilt stream.
    """
    layout = parse_jpeg(data)
    if not trusted[:layout.scan_start].all():
        raise JpegStructureError("the header lies in a failed codeword")
    if layout.size != tuple(size):
        raise JpegStructureError(f"header size {layout.size} != {tuple(size)}")
    stream, lost, lost_mcus = rebuild(data, layout, trusted) if not trusted.all() else (data, [], np.zeros(0, int))
    if len(lost_mcus) == layout.num_mcus:
        raise JpegStructureError("every MCU is lost")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(stream), formats=["JPEG"])
            img.load()
            out = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # Pillow raises OSError, SyntaxError, … on a bad stream
        raise JpegStructureError(f"rebuilt stream does not decode: {e}") from None
    if len(lost_mcus):
        out = conceal(out, lost_mask(layout, lost_mcus))
    return out, lost, lost_mcus
