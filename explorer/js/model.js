// The course model in the browser: three ONNX graphs run by onnxruntime-web (wasm, one thread),
// and the 256-step loop that dalle_core/pipeline.py runs in PyTorch.
//
//   text -> text_tokens (2, 64) -> encoder.onnx -> encoder_keys_values (3, 2, 2, 64, 128), once
//   256 x decoder_step.onnx: prev token, position i, cache (3, 4, 256, 128) -> logits (2, 1, 1025)
//        and this step's keys and values (3, 4, 1, 128), written into cache slot i here
//   detokenizer.onnx: the token rows drawn so far (rows, 16) -> pixels (4 rows, 64, 3)

import * as ort from "../vendor/onnxruntime-web/ort.wasm.bundle.min.mjs";
import { Random } from "./rng.js";
import { sampleToken, entropyBits, softmax } from "./sampling.js";
import { TextTokenizer, packTextTokens, refusedWords } from "./tokenizer.js";

ort.env.wasm.numThreads = 1; // single-threaded wasm: no cross-origin isolation headers needed
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

export const MANIFEST_FORMAT = 1;

export class Cancelled extends Error {
  constructor() {
    super("generation cancelled");
    this.name = "Cancelled";
  }
}

export class PromptError extends Error {
  constructor(words) {
    super(`the model can read no word of the prompt: ${words.join(" ")}`);
    this.name = "PromptError";
    this.words = words;
  }
}

async function sha256Hex(buffer) {
  if (!globalThis.crypto?.subtle) return null; // plain http on another host: no SubtleCrypto, no check
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function fetchChecked(base, name, record) {
  const response = await fetch(base + name);
  if (!response.ok) throw new Error(`${base + name}: HTTP ${response.status}`);
  const buffer = await response.arrayBuffer();
  const digest = await sha256Hex(buffer);
  if (digest !== null && digest !== record.sha256) {
    throw new Error(`${name} does not match manifest.json (sha256 ${digest}); rebuild the page (make explorer)`);
  }
  return buffer;
}

/** Load the manifest, the tokenizer files and the three graphs from `base` (e.g. "model/"). */
export async function loadModel(base = "model/") {
  const response = await fetch(base + "manifest.json");
  if (!response.ok) throw new Error(`${base}manifest.json: HTTP ${response.status}; build the page with make explorer`);
  const manifest = await response.json();
  if (manifest.format !== MANIFEST_FORMAT) throw new Error(`manifest format ${manifest.format}, expected ${MANIFEST_FORMAT}`);
  const files = Object.fromEntries(await Promise.all(Object.entries(manifest.files).map(
    async ([name, record]) => [name, await fetchChecked(base, name, record)])));
  const json = (name) => JSON.parse(new TextDecoder().decode(files[name]));
  const tokenizer = new TextTokenizer(json("tokenizer.json"), json("emoji.json"));
  const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
  const sessions = {};
  for (const name of ["encoder", "decoder_step", "detokenizer"]) {
    sessions[name] = await ort.InferenceSession.create(new Uint8Array(files[`${name}.onnx`]), options);
  }
  return new CourseModel(manifest, tokenizer, sessions);
}

export class CourseModel {
  constructor(manifest, tokenizer, sessions) {
    const dalle = manifest.model.dalle;
    this.manifest = manifest;
    this.tokenizer = tokenizer;
    this.sessions = sessions;
    this.layerCount = dalle.layer_count; // 3
    this.embedCount = dalle.embed_count; // 128
    this.slotCount = dalle.image_token_count; // 256 image tokens, one cache slot each
    this.side = Math.round(Math.sqrt(this.slotCount)); // 16 tokens per row
    this.vocabCount = dalle.image_vocab_count + 1; // 1025 logits: the codes and the start token
    this.codeCount = dalle.image_code_count; // 1024 codes the VQGAN can draw
    this.startToken = dalle.image_start_token; // 1024
    this.textTokenCount = dalle.text_token_count; // 64
    this.factor = manifest.model.downsample_factor; // 4 pixels per token side
    this.padId = tokenizer.special["<pad>"];
    this.busy = Promise.resolve(); // one generation at a time: onnxruntime runs one graph at a time
  }

  /** text -> text_tokens (2, 64) as an int64 tensor; throws PromptError for an unreadable prompt. */
  textTokens(text) {
    const refused = refusedWords(this.tokenizer, text);
    if (refused) throw new PromptError(refused);
    const tokens = this.tokenizer.tokenize(text);
    return packTextTokens(tokens, this.textTokenCount, this.padId);
  }

  /** Pixels (4 rows, 64, 3), floats 0..255, of the first `rows` token rows of `tokens`. */
  async detokenize(tokens, rows) {
    const input = new BigInt64Array(rows * this.side);
    for (let i = 0; i < input.length; i++) input[i] = BigInt(tokens[i]);
    const result = await this.sessions.detokenizer.run({ image_tokens: new ort.Tensor("int64", input, [rows, this.side]) });
    return result.pixels.data;
  }

  /** One picture. settings: {seed, supercondition_factor, temperature, top_k}.
   *  callbacks: onStep(i, run), onRows(rows, pixels, run), isCancelled() -> boolean.
   *  Resolves to the run: tokens, each step's two logit rows, uniforms, entropies, pixels, timings. */
  generate(text, settings, callbacks = {}) {
    const task = this.busy.then(() => this.#generate(text, settings, callbacks));
    this.busy = task.catch(() => {});
    return task;
  }

  async #generate(text, settings, { onStep, onRows, isCancelled, keepLogits = true, progressive = true }) {
    const started = performance.now();
    const { layerCount: L, embedCount: E, slotCount: S, codeCount: codes, vocabCount: vocab } = this;
    const textTokens = this.textTokens(text);
    const attentionMask = new Uint8Array(textTokens.length); // (2, 1, 1, 64): true where not padding
    for (let i = 0; i < textTokens.length; i++) attentionMask[i] = textTokens[i] !== BigInt(this.padId) ? 1 : 0;
    const encoded = await this.sessions.encoder.run({
      text_tokens: new ort.Tensor("int64", textTokens, [2, this.textTokenCount]),
    });

    const cache = new Float32Array(L * 4 * S * E); // attention_state (3, 4, 256, 128): keys rows 0-1, values 2-3
    const prevTokens = new BigInt64Array([BigInt(this.startToken)]);
    const tokenIndex = new BigInt64Array([0n]);
    const feeds = {
      prev_tokens: new ort.Tensor("int64", prevTokens, [1, 1]),
      token_index: new ort.Tensor("int64", tokenIndex, [1]),
      attention_mask: new ort.Tensor("bool", attentionMask, [2, 1, 1, this.textTokenCount]),
      encoder_keys_values: encoded.encoder_keys_values,
      attention_state: new ort.Tensor("float32", cache, [L, 4, S, E]),
    };
    const random = new Random(settings.seed);
    const run = {
      text, settings: { ...settings }, tokens: new Int32Array(S), uniforms: new Float64Array(S),
      entropy: new Float64Array(S), logits: keepLogits ? new Float32Array(S * 2 * codes) : null,
      pixels: null, rows: 0, milliseconds: {},
    };
    const loopStarted = performance.now();
    let stepMilliseconds = 0;
    for (let i = 0; i < S; i++) {
      if (isCancelled?.()) throw new Cancelled();
      tokenIndex[0] = BigInt(i);
      const t0 = performance.now();
      const result = await this.sessions.decoder_step.run(feeds);
      stepMilliseconds += performance.now() - t0;
      const fresh = result.new_keys_values.data; // (3, 4, 1, 128): this step's keys and values
      for (let row = 0; row < L * 4; row++) {
        cache.set(fresh.subarray(row * E, (row + 1) * E), (row * S + i) * E); // into slot i
      }
      const uniform = random.uniform();
      const step = sampleToken(result.logits.data, settings, uniform, vocab, codes);
      run.tokens[i] = step.token;
      run.uniforms[i] = uniform;
      run.entropy[i] = entropyBits(step.p);
      if (run.logits) {
        run.logits.set(step.unconditional, i * 2 * codes);
        run.logits.set(step.conditional, (i * 2 + 1) * codes);
      }
      prevTokens[0] = BigInt(step.token);
      onStep?.(i, run);
      if (progressive && (i + 1) % this.side === 0 && i + 1 < S) {
        const rows = (i + 1) / this.side;
        run.pixels = await this.detokenize(run.tokens, rows);
        run.rows = rows;
        onRows?.(rows, run.pixels, run);
      }
    }
    const loopEnded = performance.now();
    run.pixels = await this.detokenize(run.tokens, this.side);
    run.rows = this.side;
    onRows?.(this.side, run.pixels, run);
    const ended = performance.now();
    run.milliseconds = {
      total: ended - started, loop: loopEnded - loopStarted, steps: stepMilliseconds,
      detokenize_final: ended - loopEnded,
    };
    return run;
  }

  /** What step i of a run looked like: both branches' own distributions, the guided one, the cut. */
  stepDistributions(run, i) {
    const codes = this.codeCount;
    const unconditional = run.logits.subarray(i * 2 * codes, (i * 2 + 1) * codes);
    const conditional = run.logits.subarray((i * 2 + 1) * codes, (i * 2 + 2) * codes);
    const logits = new Float32Array(this.vocabCount * 2);
    logits.set(unconditional, 0);
    logits.set(conditional, this.vocabCount);
    const step = sampleToken(logits, run.settings, run.uniforms[i], this.vocabCount, codes);
    let total = 0;
    for (const p of step.p) total += p;
    const guided = step.p.map((p) => p / total);
    return {
      token: step.token, threshold: step.threshold, guidedLogits: step.guided, guided,
      unconditional: softmax(unconditional), // each branch's own distribution (T = 1), as notebook 04 plots it
      conditional: softmax(conditional),
    };
  }
}
