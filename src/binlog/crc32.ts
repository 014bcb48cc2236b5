import * as zlib from 'node:zlib'

/** Slicing-by-8 tables for the reflected CRC-32 polynomial 0xEDB88320 (the one zlib and the binlog use). */
const table = buildTable()

function buildTable(): Int32Array {
  const t = new Int32Array(8 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!
    for (let s = 1; s < 8; s++) {
      c = t[c & 0xff]! ^ (c >>> 8)
      t[s * 256 + n] = c
    }
  }
  return t
}

/** Table-driven CRC-32 of bytes [start, end), continuing from `crc` (0 to begin). */
export function crc32Table(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  const t = table
  let c = ~crc
  let i = start
  const stop8 = end - 8
  while (i <= stop8) {
    const lo = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!
    i += 8
  }
  while (i < end) c = t[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

type NativeCrc32 = (data: NodeJS.ArrayBufferView, value?: number) => number
// zlib.crc32 (Node >= 20.15) is about 3x faster on long ranges, but its call and subarray cost loses below a few hundred bytes.
const native = (zlib as {crc32?: NativeCrc32}).crc32
const nativeFrom = 384

/** CRC-32 of bytes [start, end), continuing from `crc` (0 to begin). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  if (native === undefined || end - start < nativeFrom) return crc32Table(bytes, start, end, crc)
  return native(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end), crc)
}
