/**
 * A line plot written as a PNG with no dependency: pixels drawn into an RGB buffer (axes, grid,
 * polyline, points, 5x7 bitmap text in upper case), encoded with node:zlib's deflate and a
 * CRC-32 of our own. Chosen over an SVG renderer or a canvas package because the benchmarks
 * must not pull native modules or large libraries for one chart.
 *
 * Owns: the drawing and the PNG encoding. Must never: read or write files (the caller does).
 */
import { deflateSync } from 'node:zlib';

type Rgb = readonly [number, number, number];

const GLYPHS: Record<string, readonly string[]> = {
  A: ['01110', '10001', '10001', '11111', '10001', '10001', '10001'],
  B: ['11110', '10001', '10001', '11110', '10001', '10001', '11110'],
  C: ['01110', '10001', '10000', '10000', '10000', '10001', '01110'],
  D: ['11110', '10001', '10001', '10001', '10001', '10001', '11110'],
  E: ['11111', '10000', '10000', '11110', '10000', '10000', '11111'],
  F: ['11111', '10000', '10000', '11110', '10000', '10000', '10000'],
  G: ['01110', '10001', '10000', '10111', '10001', '10001', '01111'],
  H: ['10001', '10001', '10001', '11111', '10001', '10001', '10001'],
  I: ['01110', '00100', '00100', '00100', '00100', '00100', '01110'],
  K: ['10001', '10010', '10100', '11000', '10100', '10010', '10001'],
  L: ['10000', '10000', '10000', '10000', '10000', '10000', '11111'],
  M: ['10001', '11011', '10101', '10101', '10001', '10001', '10001'],
  N: ['10001', '11001', '10101', '10011', '10001', '10001', '10001'],
  O: ['01110', '10001', '10001', '10001', '10001', '10001', '01110'],
  P: ['11110', '10001', '10001', '11110', '10000', '10000', '10000'],
  R: ['11110', '10001', '10001', '11110', '10100', '10010', '10001'],
  S: ['01111', '10000', '10000', '01110', '00001', '00001', '11110'],
  T: ['11111', '00100', '00100', '00100', '00100', '00100', '00100'],
  U: ['10001', '10001', '10001', '10001', '10001', '10001', '01110'],
  V: ['10001', '10001', '10001', '10001', '10001', '01010', '00100'],
  W: ['10001', '10001', '10001', '10101', '10101', '10101', '01010'],
  X: ['10001', '10001', '01010', '00100', '01010', '10001', '10001'],
  Y: ['10001', '10001', '01010', '00100', '00100', '00100', '00100'],
  Z: ['11111', '00001', '00010', '00100', '01000', '10000', '11111'],
  '0': ['01110', '10001', '10011', '10101', '11001', '10001', '01110'],
  '1': ['00100', '01100', '00100', '00100', '00100', '00100', '01110'],
  '2': ['01110', '10001', '00001', '00010', '00100', '01000', '11111'],
  '3': ['11110', '00001', '00001', '01110', '00001', '00001', '11110'],
  '4': ['00010', '00110', '01010', '10010', '11111', '00010', '00010'],
  '5': ['11111', '10000', '11110', '00001', '00001', '10001', '01110'],
  '6': ['00110', '01000', '10000', '11110', '10001', '10001', '01110'],
  '7': ['11111', '00001', '00010', '00100', '01000', '01000', '01000'],
  '8': ['01110', '10001', '10001', '01110', '10001', '10001', '01110'],
  '9': ['01110', '10001', '10001', '01111', '00001', '00010', '01100'],
  '.': ['00000', '00000', '00000', '00000', '00000', '01100', '01100'],
  ',': ['00000', '00000', '00000', '00000', '01100', '00100', '01000'],
  '(': ['00010', '00100', '01000', '01000', '01000', '00100', '00010'],
  ')': ['01000', '00100', '00010', '00010', '00010', '00100', '01000'],
  '=': ['00000', '00000', '11111', '00000', '11111', '00000', '00000'],
  '-': ['00000', '00000', '00000', '11111', '00000', '00000', '00000'],
  '/': ['00001', '00010', '00010', '00100', '01000', '01000', '10000'],
  '%': ['11001', '11010', '00010', '00100', '01000', '01011', '10011'],
  ':': ['00000', '01100', '01100', '00000', '01100', '01100', '00000'],
  ' ': ['00000', '00000', '00000', '00000', '00000', '00000', '00000'],
};

class Canvas {
  readonly pixels: Buffer;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = Buffer.alloc(width * height * 3, 255);
  }
  set(x: number, y: number, c: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    this.pixels[o] = c[0];
    this.pixels[o + 1] = c[1];
    this.pixels[o + 2] = c[2];
  }
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thick = 1): void {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= steps; i++) {
      const x = x0 + ((x1 - x0) * i) / steps;
      const y = y0 + ((y1 - y0) * i) / steps;
      for (let dx = 0; dx < thick; dx++) for (let dy = 0; dy < thick; dy++) this.set(x + dx, y + dy, c);
    }
  }
  dot(x: number, y: number, r: number, c: Rgb): void {
    for (let dx = -r; dx <= r; dx++)
      for (let dy = -r; dy <= r; dy++) if (dx * dx + dy * dy <= r * r) this.set(x + dx, y + dy, c);
  }
  /** Upper-case text at (x, y) top-left, `scale` pixels per font dot. */
  text(x: number, y: number, s: string, c: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const glyph = GLYPHS[ch] ?? GLYPHS[' ']!;
      glyph.forEach((row, gy) => {
        for (let gx = 0; gx < 5; gx++)
          if (row[gx] === '1')
            for (let sx = 0; sx < scale; sx++)
              for (let sy = 0; sy < scale; sy++) this.set(cx + gx * scale + sx, y + gy * scale + sy, c);
      });
      cx += 6 * scale;
    }
  }
  textWidth(s: string, scale = 2): number {
    return s.length * 6 * scale;
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The canvas as PNG bytes (8-bit RGB, no interlace, filter 0 on every row). */
function encodePng(canvas: Canvas): Buffer {
  const { width, height, pixels } = canvas;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0;
    pixels.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export interface Series {
  readonly label: string;
  readonly color: Rgb;
  readonly points: readonly (readonly [number, number])[];
}

/** A plot with a log10 x axis and a linear y axis from 0 to yMax. */
export function linePlotPng(options: {
  title: string;
  xLabel: string;
  yLabel: string;
  yMax: number;
  series: readonly Series[];
  width?: number;
  height?: number;
}): Buffer {
  const width = options.width ?? 800;
  const height = options.height ?? 500;
  const c = new Canvas(width, height);
  const left = 90;
  const right = width - 30;
  const top = 60;
  const bottom = height - 70;
  const xs = options.series.flatMap((s) => s.points.map(([x]) => x));
  const xMin = Math.log10(Math.min(...xs));
  const xMax = Math.log10(Math.max(...xs));
  const px = (x: number): number =>
    left + ((Math.log10(x) - xMin) / Math.max(1e-9, xMax - xMin)) * (right - left);
  const py = (y: number): number => bottom - (y / options.yMax) * (bottom - top);
  const black: Rgb = [0, 0, 0];
  const grey: Rgb = [220, 220, 220];
  c.text((width - c.textWidth(options.title)) / 2, 18, options.title, black);
  for (let i = 0; i <= 5; i++) {
    const y = (options.yMax * i) / 5;
    c.line(left, py(y), right, py(y), grey);
    const label = y.toFixed(1);
    c.text(left - 10 - c.textWidth(label), py(y) - 7, label, black);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    c.line(px(x), top, px(x), bottom, grey);
    const label = String(x);
    c.text(px(x) - c.textWidth(label) / 2, bottom + 10, label, black);
  }
  c.line(left, top, left, bottom, black, 2);
  c.line(left, bottom, right, bottom, black, 2);
  c.text((width - c.textWidth(options.xLabel)) / 2, height - 30, options.xLabel, black);
  c.text(10, top - 30, options.yLabel, black);
  options.series.forEach((s, i) => {
    for (let j = 1; j < s.points.length; j++) {
      const [x0, y0] = s.points[j - 1]!;
      const [x1, y1] = s.points[j]!;
      c.line(px(x0), py(y0), px(x1), py(y1), s.color, 2);
    }
    for (const [x, y] of s.points) c.dot(px(x), py(y), 4, s.color);
    c.line(right - 260, top + 14 + i * 22, right - 230, top + 14 + i * 22, s.color, 3);
    c.text(right - 222, top + 8 + i * 22, s.label, black);
  });
  return encodePng(c);
}
