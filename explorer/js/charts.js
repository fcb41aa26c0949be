// Drawing on canvases: the picture, the step's bars, the entropy line. No library.

export const COLOURS = {
  unconditional: "#8c8c8c",
  conditional: "#2f6db5",
  guided: "#e07b00",
  cut: "#c0392b",
  axis: "#444",
  grid: "#e3e3e3",
  cursor: "#ff2d95",
};

/** Pixels (rows, width, 3) floats 0..255 -> the canvas's top rows; the rest stays blank.
 *  Values are truncated to bytes, as dalle_core.pipeline.to_pil does. */
export function drawPixels(canvas, pixels, pixelRows, width) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, canvas.height);
  const data = image.data;
  for (let i = 0; i < width * canvas.height; i++) {
    const inside = i < pixelRows * width;
    data[4 * i] = inside ? Math.trunc(pixels[3 * i]) : 236;
    data[4 * i + 1] = inside ? Math.trunc(pixels[3 * i + 1]) : 236;
    data[4 * i + 2] = inside ? Math.trunc(pixels[3 * i + 2]) : 236;
    data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** A frame around token i on the overlay canvas (side tokens per row). */
export function drawCursor(canvas, i, side, colour = COLOURS.cursor) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (i === null || i < 0) return;
  const cell = canvas.width / side;
  context.strokeStyle = colour;
  context.lineWidth = 2;
  context.strokeRect((i % side) * cell + 1, Math.floor(i / side) * cell + 1, cell - 2, cell - 2);
}

/** The token's pixels, enlarged: a (factor x factor) patch of the picture. */
export function drawPatch(canvas, pixels, width, i, side, factor) {
  const context = canvas.getContext("2d");
  const cell = canvas.width / factor;
  const x0 = (i % side) * factor;
  const y0 = Math.floor(i / side) * factor;
  for (let y = 0; y < factor; y++) {
    for (let x = 0; x < factor; x++) {
      const at = 3 * ((y0 + y) * width + x0 + x);
      context.fillStyle = `rgb(${Math.trunc(pixels[at])},${Math.trunc(pixels[at + 1])},${Math.trunc(pixels[at + 2])})`;
      context.fillRect(x * cell, y * cell, cell, cell);
    }
  }
}

function setupCanvas(canvas) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.font = "13px system-ui, sans-serif";
  context.textBaseline = "middle";
  return context;
}

const LOG_FLOOR = -6; // log10 of the smallest probability the bars show

/** Bars of three distributions over a few codes, log scale, the top-k cut and the drawn code marked.
 *  codes: code ids in order of the blended logits; series: {unconditional, conditional, guided} arrays
 *  indexed by code; cutAfter: how many of `codes` top-k keeps (codes.length if all). */
export function drawBars(canvas, codes, series, cutAfter, drawnCode, labels) {
  const context = setupCanvas(canvas);
  const left = 52, right = 8, top = 26, bottom = 36;
  const width = canvas.width - left - right;
  const height = canvas.height - top - bottom;
  const y = (p) => top + height * (1 - (Math.max(Math.log10(Math.max(p, 1e-300)), LOG_FLOOR) - LOG_FLOOR) / -LOG_FLOOR);
  context.strokeStyle = COLOURS.grid;
  context.fillStyle = COLOURS.axis;
  context.textAlign = "right";
  for (let power = LOG_FLOOR; power <= 0; power++) {
    context.beginPath();
    context.moveTo(left, y(10 ** power));
    context.lineTo(left + width, y(10 ** power));
    context.stroke();
    context.fillText(power === 0 ? "1" : `1e${power}`, left - 6, y(10 ** power));
  }
  const slot = width / codes.length;
  const bar = slot / 4;
  const names = ["unconditional", "conditional", "guided"];
  codes.forEach((code, k) => {
    const x = left + k * slot + bar / 2;
    names.forEach((name, n) => {
      const p = series[name][code];
      context.fillStyle = COLOURS[name];
      if (p > 0) context.fillRect(x + n * bar, y(p), bar - 1, top + height - y(p));
    });
    context.fillStyle = code === drawnCode ? COLOURS.cursor : COLOURS.axis;
    context.textAlign = "center";
    context.fillText(String(code), left + (k + 0.5) * slot, top + height + 12);
    if (code === drawnCode) context.fillText(`▲ ${labels.drawn}`, left + (k + 0.5) * slot, top + height + 27);
  });
  if (cutAfter < codes.length) {
    const x = left + cutAfter * slot;
    context.strokeStyle = COLOURS.cut;
    context.setLineDash([5, 4]);
    context.lineWidth = 2;
    context.beginPath();
    context.moveTo(x, top - 4);
    context.lineTo(x, top + height);
    context.stroke();
    context.setLineDash([]);
    context.lineWidth = 1;
    context.fillStyle = COLOURS.cut;
    context.textAlign = "left";
    context.fillText(labels.cut, x + 4, top - 12);
  }
  // legend
  context.textAlign = "left";
  let x = left;
  names.forEach((name) => {
    context.fillStyle = COLOURS[name];
    context.fillRect(x, 4, 12, 12);
    context.fillStyle = COLOURS.axis;
    context.fillText(labels[name], x + 16, 10);
    x += 24 + context.measureText(labels[name]).width;
  });
}

/** The entropy of every step as a line; row boundaries as ticks; the chosen step marked. */
export function drawEntropy(canvas, entropy, count, maxBits, chosen, labels) {
  const context = setupCanvas(canvas);
  const left = 44, right = 8, top = 10, bottom = 30;
  const width = canvas.width - left - right;
  const height = canvas.height - top - bottom;
  const x = (i) => left + (width * i) / (entropy.length - 1);
  const y = (bits) => top + height * (1 - bits / maxBits);
  context.strokeStyle = COLOURS.grid;
  context.fillStyle = COLOURS.axis;
  context.textAlign = "right";
  for (let bits = 0; bits <= maxBits; bits += 2) {
    context.beginPath();
    context.moveTo(left, y(bits));
    context.lineTo(left + width, y(bits));
    context.stroke();
    context.fillText(String(bits), left - 6, y(bits));
  }
  context.textAlign = "center";
  for (let i = 0; i < entropy.length; i += 32) context.fillText(String(i), x(i), top + height + 12);
  context.fillText(labels.step, left + width / 2, top + height + 25);
  context.save();
  context.translate(12, top + height / 2);
  context.rotate(-Math.PI / 2);
  context.fillText(labels.bits, 0, 0);
  context.restore();
  context.strokeStyle = COLOURS.guided;
  context.lineWidth = 1.5;
  context.beginPath();
  for (let i = 0; i < count; i++) {
    if (i === 0) context.moveTo(x(i), y(entropy[i]));
    else context.lineTo(x(i), y(entropy[i]));
  }
  context.stroke();
  context.lineWidth = 1;
  if (chosen !== null && chosen < count) {
    context.strokeStyle = COLOURS.cursor;
    context.beginPath();
    context.moveTo(x(chosen), top);
    context.lineTo(x(chosen), top + height);
    context.stroke();
  }
}

/** Which step a click at clientX on the entropy canvas points at. */
export function entropyStepAt(canvas, clientX, steps) {
  const box = canvas.getBoundingClientRect();
  const left = 44, right = 8;
  const scale = canvas.width / box.width;
  const fraction = ((clientX - box.left) * scale - left) / (canvas.width - left - right);
  return Math.min(steps - 1, Math.max(0, Math.round(fraction * (steps - 1))));
}
