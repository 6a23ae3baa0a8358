// Grayscale PNG output for sample grids (PNG spec, ISO/IEC 15948: signature, IHDR, one zlib IDAT, IEND;
// every row with filter type None). Written atomically so a reader never sees half a file.

import { crc32, deflateSync } from "node:zlib";
import { writeFileAtomic } from "./atomic.js";

/** An 8-bit grayscale PNG of a [height, width] pixel array with values in [0, 1] (clamped). */
export function grayPng(pix: Float32Array, width: number, height: number): Buffer {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) throw new RangeError(`grayPng: size must be positive integers, got ${width}x${height}`);
  if (pix.length !== width * height) throw new RangeError(`grayPng: ${pix.length} pixels for a ${width}x${height} image (expected ${width * height})`);
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0;
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = Math.round(255 * Math.min(1, Math.max(0, pix[y * width + x] || 0)));
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4), body = Buffer.concat([Buffer.from(type, "ascii"), data]), crc = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // bit depth 8, grayscale, deflate, no filter, no interlace
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}

/**
 * n square images of side `size` (flat, values in [0, 1]) as one grid of `cols` columns with a 2-pixel gray
 * border, each pixel scaled up `scale` times.
 */
export function imageGrid(images: Float32Array, n: number, cols: number, o: { size?: number; scale?: number } = {}): { pix: Float32Array; w: number; h: number } {
  const side = o.size ?? 28, S = o.scale ?? 2, px = side * side;
  if (images.length < n * px) throw new RangeError(`imageGrid: ${images.length} values hold fewer than ${n} images of ${side}x${side}`);
  const cell = side * S + 2, rows = Math.ceil(n / cols), w = cols * cell + 2, h = rows * cell + 2;
  const pix = new Float32Array(w * h).fill(0.5);
  for (let k = 0; k < n; k++) {
    const x0 = 2 + (k % cols) * cell, y0 = 2 + Math.floor(k / cols) * cell;
    for (let y = 0; y < side * S; y++) for (let x = 0; x < side * S; x++) pix[(y0 + y) * w + x0 + x] = images[k * px + Math.floor(y / S) * side + Math.floor(x / S)];
  }
  return { pix, w, h };
}

/** Write n images (flat, [0, 1]) as a PNG grid of `cols` columns to `file` (temp + rename). */
export function writeImageGrid(file: string, images: Float32Array, n: number, cols = 8, o: { size?: number; scale?: number } = {}): void {
  const g = imageGrid(images, n, cols, o);
  writeFileAtomic(file, grayPng(g.pix, g.w, g.h));
}
