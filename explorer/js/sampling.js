// From one decoder step's logits to one image token, in min-dalle's order, as notebook 04
// takes it apart (dalle_core/sampling.py is the PyTorch original):
//
//   logits (2, 1, vocab + 1) --slice--> u, c (codes each) --supercondition--> guided (codes)
//     --top-k--> kept --minus the max--> --/ temperature--> --exp--> p --draw with a uniform--> token
//
// Every function is small and pure, so the page can show what each one did at any step.
// The numbers: logits arrive as float32; the blend is stored as float32, as PyTorch holds it;
// everything after it runs in JavaScript's float64. tests/browser/test_explorer.py checks the
// draws against a Python reference sampler given the same logits and uniforms.

/** Slice (notebook 04, section 1): rows 0 (unconditional: the empty prompt) and 1 (conditional: the prompt) of the
 *  logits, each cut to the first `codeCount` entries, the codes the VQGAN can draw. */
export function slice(logits, vocabCount, codeCount) {
  const unconditional = logits.slice(0, codeCount); // row 0
  const conditional = logits.slice(vocabCount, vocabCount + codeCount); // row 1
  return { unconditional, conditional };
}

/** Super-condition (section 3): u * (1 - s) + c * s, i.e. u + s * (c - u). s = 1 is the prompt alone,
 *  s = 0 the empty prompt alone; s > 1 moves further from the empty prompt. */
export function supercondition(unconditional, conditional, s) {
  const guided = new Float32Array(unconditional.length);
  for (let j = 0; j < guided.length; j++) guided[j] = unconditional[j] * (1 - s) + conditional[j] * s;
  return guided;
}

/** Top-k (section 9): the k-th largest logit. Every logit at least this large is kept (ties can keep a few more). */
export function topKThreshold(logits, topK) {
  const k = Math.min(Math.max(1, Math.floor(topK)), logits.length);
  const sorted = Float32Array.from(logits).sort(); // ascending
  return sorted[sorted.length - k];
}

/** Subtract the row's maximum (section 5: exp stays in (0, 1]), divide by the temperature (section 8),
 *  exp, and zero every code outside the top k: unnormalised probabilities. */
export function probabilities(logits, temperature, topK) {
  const threshold = topKThreshold(logits, topK);
  let max = -Infinity;
  for (let j = 0; j < logits.length; j++) if (logits[j] > max) max = logits[j];
  const p = new Float64Array(logits.length);
  for (let j = 0; j < logits.length; j++) {
    p[j] = logits[j] >= threshold ? Math.exp((logits[j] - max) / temperature) : 0;
  }
  return { p, threshold, max };
}

/** Draw (section 10): the first code whose running sum of p passes uniform * sum(p) (uniform in [0, 1)).
 *  Code j wins with probability p[j] / sum(p), as torch.multinomial's draw does. */
export function draw(p, uniform) {
  let total = 0;
  for (let j = 0; j < p.length; j++) total += p[j];
  const target = uniform * total;
  let running = 0;
  let last = 0;
  for (let j = 0; j < p.length; j++) {
    if (p[j] === 0) continue;
    running += p[j];
    last = j;
    if (target < running) return j;
  }
  return last; // rounding left target at the very top: the last kept code
}

/** Softmax of a row of logits (float64), for showing a branch's own distribution. */
export function softmax(logits, temperature = 1) {
  let max = -Infinity;
  for (let j = 0; j < logits.length; j++) if (logits[j] > max) max = logits[j];
  const p = new Float64Array(logits.length);
  let total = 0;
  for (let j = 0; j < logits.length; j++) total += p[j] = Math.exp((logits[j] - max) / temperature);
  for (let j = 0; j < logits.length; j++) p[j] /= total;
  return p;
}

/** Entropy in bits of (possibly unnormalised) probabilities. */
export function entropyBits(p) {
  let total = 0;
  for (let j = 0; j < p.length; j++) total += p[j];
  let bits = 0;
  for (let j = 0; j < p.length; j++) {
    if (p[j] > 0) {
      const q = p[j] / total;
      bits -= q * Math.log2(q);
    }
  }
  return bits;
}

/** The whole order for one step: logits (float32, 2 * vocabCount) -> the drawn token and what led to it. */
export function sampleToken(logits, settings, uniform, vocabCount, codeCount) {
  const { unconditional, conditional } = slice(logits, vocabCount, codeCount);
  const guided = supercondition(unconditional, conditional, settings.supercondition_factor);
  const { p, threshold } = probabilities(guided, settings.temperature, settings.top_k);
  const token = draw(p, uniform);
  return { token, unconditional, conditional, guided, p, threshold };
}
