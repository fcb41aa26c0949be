// The page: controls, the picture forming row by row, one step's distributions, the entropy line,
// the s x T sweep, two languages, and the hook window.dalleExplorer (docs/explorer.md).

import { drawBars, drawCursor, drawEntropy, drawPatch, drawPixels, entropyStepAt } from "./charts.js";
import { LANGUAGES, getLanguage, setLanguage, t } from "./i18n.js";
import { Cancelled, PromptError, loadModel } from "./model.js";
import { splitWords } from "./tokenizer.js";

const $ = (id) => document.getElementById(id);
const BARS_SHOWN = 12; // codes shown in the step's bar chart
const SLIDER_DELAY_MS = 150; // wait for the slider to rest before drawing again

const state = {
  model: null,
  links: {},
  run: null, // the last finished (or running) generation
  generation: 0, // increases with every request; an older running generation stops
  completed: 0,
  step: 0,
  status: { key: "status_loading", values: {} },
  sweepRunning: false,
};

// ---- settings --------------------------------------------------------------------------------
function settingsFromControls() {
  return {
    supercondition_factor: Number($("supercondition").value),
    temperature: Number($("temperature").value),
    top_k: Math.round(Number($("top-k").value)),
    seed: Math.max(1, Math.floor(Number($("seed").value)) || 1),
  };
}

function checkSettings(settings) {
  const { supercondition_factor: s, temperature, top_k: topK, seed } = settings;
  for (const [name, value] of [["supercondition_factor", s], ["temperature", temperature], ["top_k", topK], ["seed", seed]]) {
    if (typeof value !== "number" || !Number.isFinite(value)) throw new TypeError(`${name} must be a finite number, got ${value}`);
  }
  if (temperature <= 0) throw new RangeError(`temperature must be positive, got ${temperature}`);
  if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`top_k must be an integer of at least 1, got ${topK}`);
  if (!Number.isInteger(seed) || seed < 1 || seed > 0xffffffff) throw new RangeError(`seed must be an integer 1..4294967295, got ${seed}`);
}

function showSettings(settings) {
  $("supercondition").value = settings.supercondition_factor;
  $("temperature").value = settings.temperature;
  $("top-k").value = settings.top_k;
  $("seed").value = settings.seed;
  showValues();
}

function showValues() {
  $("seed-slider").value = Math.min(Number($("seed").value) || 1, 1000);
  $("supercondition-value").textContent = Number($("supercondition").value).toString();
  $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  $("top-k-value").textContent = $("top-k").value;
}

// ---- text that depends on the language ---------------------------------------------------------
function setStatus(key, values = {}) {
  state.status = { key, values };
  $("status").textContent = t(key, values);
}

function renderText() {
  const manifest = state.model?.manifest;
  const parameters = manifest ? manifest.model.parameters.encoder + manifest.model.parameters.decoder : null;
  $("subtitle").textContent = manifest ? t("subtitle", {
    layers: manifest.model.dalle.layer_count, millions: (parameters / 1e6).toFixed(1),
    tenThousands: Math.round(parameters / 1e4),
  }) : "";
  setStatus(state.status.key, state.status.values);
  for (const link of document.querySelectorAll("a.notebook")) {
    const target = state.links[link.dataset.link];
    if (!target) continue;
    link.href = target.href;
    link.textContent = t("notebook", { number: target.notebook, heading: target.heading });
  }
  if (manifest) showPrompt();
  if (state.run?.logits) showStep(state.step);
}

// ---- the prompt ----------------------------------------------------------------------------------
function showPrompt() {
  const tokenizer = state.model.tokenizer;
  const text = $("prompt").value;
  const ids = tokenizer.tokenize(text);
  const subwords = new Map([...tokenizer.tokenFromSubword].map(([subword, id]) => [id, subword]));
  const tokens = $("tokens");
  tokens.replaceChildren(...ids.map((id) => {
    const chip = document.createElement("span");
    chip.className = "token";
    chip.textContent = (subwords.get(id) ?? "?").replace("\u0120", "␣");
    const small = document.createElement("small");
    small.textContent = String(id);
    chip.append(small);
    return chip;
  }));
  const unreadable = new Set(tokenizer.unreadableWords(text));
  const unseen = new Set(tokenizer.unseenWords(text));
  const flags = $("flags");
  flags.replaceChildren();
  for (const word of splitWords(text)) {
    if (!unreadable.has(word) && !unseen.has(word)) continue;
    const mark = document.createElement("span");
    mark.className = unreadable.has(word) ? "flag-unreadable" : "flag-unseen";
    mark.textContent = word;
    mark.title = t(unreadable.has(word) ? "unreadable" : "unseen");
    flags.append(mark, ` (${mark.title}) `);
  }
  $("refusal").hidden = true;
}

function showRefusal(words) {
  $("refusal").textContent = t("refused", { words: words.join(" ") });
  $("refusal").hidden = false;
}

// ---- the picture ---------------------------------------------------------------------------------
function pixelWidth() {
  return state.model.side * state.model.factor; // 64
}

function showPicture(run, pixelRows) {
  drawPixels($("picture"), run.pixels, pixelRows, pixelWidth());
}

// ---- one step --------------------------------------------------------------------------------------
/** Redraw the step panel for step i of the last run; returns the milliseconds it took. */
function showStep(i) {
  const started = performance.now();
  const run = state.run;
  state.step = i;
  $("step").value = i;
  $("step-value").textContent = String(i);
  if (!run?.logits) return 0;
  const model = state.model;
  const done = run.rows === model.side;
  if (i >= run.count) i = Math.max(0, run.count - 1);
  const step = model.stepDistributions(run, i);
  const order = Array.from(step.guidedLogits.keys()).sort((a, b) => step.guidedLogits[b] - step.guidedLogits[a]);
  const codes = order.slice(0, BARS_SHOWN);
  let kept = 0;
  for (const logit of step.guidedLogits) if (logit >= step.threshold) kept += 1;
  const cutAfter = codes.filter((code) => step.guidedLogits[code] >= step.threshold).length;
  drawBars($("bars"), codes, { unconditional: step.unconditional, conditional: step.conditional, guided: step.guided },
    cutAfter, step.token, {
      unconditional: t("legend_unconditional"), conditional: t("legend_conditional"), guided: t("legend_guided"),
      cut: t("top_k_cut"), drawn: t("drawn"),
    });
  $("step-summary").textContent = t("step_summary", {
    step: i, row: Math.floor(i / model.side), column: i % model.side, code: step.token, kept,
  });
  drawCursor($("picture-overlay"), i, model.side);
  const patch = $("patch");
  if (done || Math.floor(i / model.side) < run.rows) drawPatch(patch, run.pixels, pixelWidth(), i, model.side, model.factor);
  else patch.getContext("2d").clearRect(0, 0, patch.width, patch.height);
  drawEntropy($("entropy"), run.entropy, run.count, Math.log2(model.codeCount), i,
    { step: t("step_axis"), bits: t("entropy_axis") });
  return performance.now() - started;
}

// ---- generating ------------------------------------------------------------------------------------
async function generate(text, settings) {
  checkSettings(settings);
  const generation = ++state.generation;
  const model = state.model;
  let refused = false;
  try {
    model.textTokens(text); // refuses an unreadable prompt before any work
  } catch (error) {
    if (error instanceof PromptError) {
      refused = true;
      showRefusal(error.words);
    }
    throw error;
  } finally {
    if (!refused) $("refusal").hidden = true;
  }
  document.body.dataset.state = "running";
  let lastPainted = 0;
  try {
    const run = await model.generate(text, settings, {
      isCancelled: () => generation !== state.generation,
      onStep: (i, partial) => {
        partial.count = i + 1;
        state.run = partial;
        const now = performance.now();
        if (now - lastPainted > 50) { // paint at most 20 times a second: steps are faster
          lastPainted = now;
          setStatus("status_running", { step: i + 1 });
          drawCursor($("picture-overlay"), i, model.side);
        }
      },
      onRows: (rows, pixels, partial) => showPicture(partial, rows * model.factor),
    });
    run.count = model.slotCount;
    state.run = run;
    state.completed += 1;
    setStatus("status_done", { seconds: (run.milliseconds.total / 1000).toFixed(2) });
    $("step").max = String(model.slotCount - 1);
    showStep(Math.min(state.step, model.slotCount - 1));
    document.body.dataset.state = "done";
    return run;
  } catch (error) {
    if (!(error instanceof Cancelled)) {
      document.body.dataset.state = "error";
      setStatus("status_error", { message: error.message });
    }
    throw error;
  }
}

function generateFromControls() {
  showValues();
  generate($("prompt").value, settingsFromControls()).catch((error) => {
    if (!(error instanceof Cancelled) && !(error instanceof PromptError)) console.warn(error);
  });
}

let sliderTimer = null;
function onSlider() {
  showValues();
  clearTimeout(sliderTimer);
  sliderTimer = setTimeout(generateFromControls, SLIDER_DELAY_MS);
}

// ---- the sweep -------------------------------------------------------------------------------------
function parseList(text) {
  const values = text.split(/[,\s]+/).filter(Boolean).map(Number);
  return values.every(Number.isFinite) ? values : null;
}

async function runSweep() {
  const factors = parseList($("sweep-factors").value);
  const temperatures = parseList($("sweep-temperatures").value);
  if (!factors?.length || !temperatures?.length || temperatures.some((x) => x <= 0) || state.sweepRunning) return;
  state.sweepRunning = true;
  const grid = $("sweep");
  grid.style.gridTemplateColumns = `auto repeat(${temperatures.length}, auto)`;
  const cells = [document.createElement("div")];
  for (const temperature of temperatures) {
    const head = document.createElement("div");
    head.className = "axis";
    head.textContent = `T = ${temperature}`;
    cells.push(head);
  }
  const canvases = [];
  for (const s of factors) {
    const head = document.createElement("div");
    head.className = "axis";
    head.textContent = `s = ${s}`;
    cells.push(head);
    for (const temperature of temperatures) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = pixelWidth();
      figure.append(canvas);
      cells.push(figure);
      canvases.push({ canvas, s, temperature });
    }
  }
  grid.replaceChildren(...cells);
  const base = settingsFromControls();
  const text = $("prompt").value;
  try {
    for (const [done, cell] of canvases.entries()) {
      $("sweep-status").textContent = t("sweep_running", { done, total: canvases.length });
      const settings = { ...base, supercondition_factor: cell.s, temperature: cell.temperature };
      const run = await state.model.generate(text, settings, { keepLogits: false, progressive: false });
      drawPixels(cell.canvas, run.pixels, pixelWidth(), pixelWidth());
    }
    $("sweep-status").textContent = t("sweep_running", { done: canvases.length, total: canvases.length });
  } catch (error) {
    if (error instanceof PromptError) showRefusal(error.words);
    else throw error;
  } finally {
    state.sweepRunning = false;
  }
}

// ---- start -----------------------------------------------------------------------------------------
function chooseLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(asked)) return asked;
  try {
    const saved = localStorage.getItem("dalle-explorer-language");
    if (LANGUAGES.includes(saved)) return saved;
  } catch { /* storage may be off */ }
  return navigator.language?.toLowerCase().startsWith("zh") ? "zh" : "en";
}

function switchLanguage(language) {
  setLanguage(language);
  try {
    localStorage.setItem("dalle-explorer-language", language);
  } catch { /* storage may be off */ }
  renderText();
}

function wireControls() {
  for (const id of ["supercondition", "temperature", "top-k"]) $(id).addEventListener("input", onSlider);
  $("seed").addEventListener("change", onSlider);
  $("seed-slider").addEventListener("input", () => {
    $("seed").value = $("seed-slider").value;
    onSlider();
  });
  $("new-seed").addEventListener("click", () => {
    $("seed").value = 1 + Math.floor(Math.random() * 99999);
    onSlider();
  });
  $("generate").addEventListener("click", generateFromControls);
  $("prompt").addEventListener("input", () => state.model && showPrompt());
  $("prompt").addEventListener("keydown", (event) => event.key === "Enter" && generateFromControls());
  $("step").addEventListener("input", () => showStep(Number($("step").value)));
  $("entropy").addEventListener("click", (event) => {
    if (state.run?.logits) showStep(entropyStepAt($("entropy"), event.clientX, state.model.slotCount));
  });
  $("sweep-run").addEventListener("click", () => runSweep());
  $("language").addEventListener("click", () => switchLanguage(getLanguage() === "en" ? "zh" : "en"));
}

async function start() {
  setLanguage(chooseLanguage());
  wireControls();
  showValues();
  renderText();
  const [model, links] = await Promise.all([loadModel("model/"), fetch("links.json").then((r) => r.json())]);
  state.model = model;
  state.links = links;
  renderText();
  document.body.dataset.state = "ready";
  await generate($("prompt").value, settingsFromControls()).catch(() => {});
}

const ready = start().catch((error) => {
  document.body.dataset.state = "error";
  setStatus("status_error", { message: error.message });
  throw error;
});

window.dalleExplorer = {
  ready,
  /** Draw one picture as the page does (its controls show the settings); resolves to
   *  {image_tokens: 256 integers, milliseconds: {...}}. Rejects an unreadable prompt. */
  async generate({ text, seed, supercondition_factor, temperature, top_k }) {
    await ready;
    if (typeof text !== "string") throw new TypeError(`text must be a string, got ${typeof text}`);
    const settings = { seed, supercondition_factor, temperature, top_k };
    checkSettings(settings);
    $("prompt").value = text;
    showPrompt();
    showSettings(settings);
    const run = await generate(text, settings);
    return { image_tokens: Array.from(run.tokens), milliseconds: run.milliseconds };
  },
  /** Show step i in the step panel; returns the milliseconds the redraw took. */
  showStep: (i) => showStep(i),
  setLanguage: (language) => switchLanguage(language),
  get completed() {
    return state.completed;
  },
  /** The entropy in bits of each step's drawn-from distribution, last picture. */
  get entropy() {
    return state.run ? Array.from(state.run.entropy) : [];
  },
};
