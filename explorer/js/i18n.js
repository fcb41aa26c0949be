// The page's words in English and Chinese (terms as docs/zh/README.md's glossary gives them).
// Elements carry data-i18n="key"; text made at run time comes from t(key, values).

export const STRINGS = {
  en: {
    title: "DALL·E Mini from the inside: the explorer",
    subtitle: "The course model ({layers} layers, {millions} million parameters in encoder and decoder, trained on pictures "
      + "of shapes) runs in this page: "
      + "nothing leaves your computer. Move a slider and watch every step's distributions change.",
    language: "中文",
    prompt_heading: "Prompt",
    prompt_label: "Describe a picture (the course model knows shapes, colours and places)",
    generate: "Draw",
    tokens_label: "Tokens the model reads",
    unseen: "never in a training caption: read as pieces",
    unreadable: "unreadable: no token for it",
    refused: "The model can read no word of this prompt ({words}): it would draw what the empty prompt draws. "
      + "The Python API refuses it too. DALL·E Mini reads English.",
    settings_heading: "Sampling settings",
    supercondition: "super-condition factor s",
    supercondition_help: "logits = u + s · (c − u): 0 is the empty prompt alone, 1 the prompt alone, more follows the text harder",
    temperature: "temperature T",
    temperature_help: "the blended logits are divided by T: small is near-greedy, large is flatter",
    top_k: "top-k",
    top_k_help: "only the k codes with the largest blended logits can be drawn",
    seed: "seed",
    seed_help: "the same seed and settings draw the same picture",
    new_seed: "new seed",
    picture_heading: "The picture, row by row",
    picture_help: "Each step draws one of 256 tokens, left to right, top to bottom; every finished row of 16 tokens is "
      + "decoded by the VQGAN into 4 rows of pixels (64 × 64 in all).",
    status_loading: "loading the model…",
    status_running: "step {step} of 256",
    status_done: "256 tokens in {seconds} s",
    status_error: "error: {message}",
    step_heading: "One step under the microscope",
    step_help: "The codes with the largest blended logits at this step: the empty prompt's distribution (u), the "
      + "prompt's (c), both at T = 1, and the blended one the token was drawn from (after s, top-k and T). "
      + "Log scale.",
    step_label: "step",
    step_summary: "step {step}: row {row}, column {column}; drew code {code}; top-k keeps {kept} codes",
    legend_unconditional: "u: empty prompt",
    legend_conditional: "c: prompt",
    legend_guided: "drawn from",
    top_k_cut: "top-k cut",
    drawn: "drawn",
    patch_heading: "The drawn code's patch",
    patch_help: "Its 4 × 4 pixels in the picture, enlarged.",
    entropy_heading: "Entropy at every step",
    entropy_help: "Entropy in bits of the distribution each token was drawn from: 0 is certain, 10 is uniform over "
      + "1,024 codes. Click to inspect a step.",
    entropy_axis: "bits",
    step_axis: "step",
    sweep_heading: "Sweep: s × T, for lectures",
    sweep_help: "One picture per (s, T), same prompt, seed and top-k.",
    sweep_factors: "s values",
    sweep_temperatures: "T values",
    sweep_run: "Run the sweep",
    sweep_running: "{done} of {total} pictures",
    notebook: "Notebook {number} · {heading}",
    footer: "The course model in onnxruntime-web (WebAssembly, one thread); the tokenizer and sampler in plain "
      + "JavaScript, tested against PyTorch. Pictures are 64 × 64: the course VQGAN was trained without "
      + "DALL·E's perceptual and adversarial losses, hence the soft edges.",
  },
  zh: {
    title: "DALL·E Mini 内部探秘：浏览器探索页",
    subtitle: "课程模型（{layers} 层，编码器和解码器共 {tenThousands} 万参数，用几何图形图片训练）就在本页面里运行，数据不会离开你的电脑。"
      + "拖动滑块，看每一步的概率分布如何变化。",
    language: "English",
    prompt_heading: "提示词",
    prompt_label: "描述一张图（课程模型认识形状、颜色和位置，只读英文）",
    generate: "生成",
    tokens_label: "模型读到的文本 token",
    unseen: "训练描述里从未出现：被拆成小片段读",
    unreadable: "无法读取：没有对应的 token",
    refused: "模型读不懂这个提示词里的任何一个词（{words}），生成结果会和空提示词一样。"
      + "Python API 同样会拒绝它。DALL·E Mini 只读英文。",
    settings_heading: "采样设置",
    supercondition: "超条件系数 s",
    supercondition_help: "logits = u + s · (c − u)：0 只看空提示词，1 只看提示词，越大越贴近文字",
    temperature: "温度 T",
    temperature_help: "混合后的 logits 除以 T：越小越接近贪心，越大分布越平",
    top_k: "top-k 截断",
    top_k_help: "只在混合 logits 最大的 k 个码里抽样",
    seed: "随机种子",
    seed_help: "同样的种子和设置画出同样的图",
    new_seed: "换个种子",
    picture_heading: "图像逐行生成",
    picture_help: "每一步抽出 256 个 token 中的一个，从左到右、从上到下；每完成一行 16 个 token，"
      + "VQGAN 就把它解码成 4 行像素（共 64 × 64）。",
    status_loading: "正在加载模型…",
    status_running: "第 {step} / 256 步",
    status_done: "256 个 token 用时 {seconds} 秒",
    status_error: "出错：{message}",
    step_heading: "放大看某一步",
    step_help: "这一步混合 logits 最大的几个码：空提示词的分布（u）、提示词的分布（c），两者都按 T = 1，"
      + "以及实际抽样所用的混合分布（经过 s、top-k 和 T）。纵轴为对数刻度。",
    step_label: "步",
    step_summary: "第 {step} 步：第 {row} 行、第 {column} 列；抽到码 {code}；top-k 保留 {kept} 个码",
    legend_unconditional: "u：空提示词",
    legend_conditional: "c：提示词",
    legend_guided: "抽样分布",
    top_k_cut: "top-k 截断线",
    drawn: "抽中",
    patch_heading: "抽中的码对应的图块",
    patch_help: "它在图中的 4 × 4 像素，放大显示。",
    entropy_heading: "每一步的熵",
    entropy_help: "每个 token 抽样所用分布的熵（比特）：0 表示确定，10 表示在 1024 个码上均匀。点击可查看该步。",
    entropy_axis: "比特",
    step_axis: "步",
    sweep_heading: "参数扫描：s × T（课堂演示用）",
    sweep_help: "每个 (s, T) 一张图，提示词、种子和 top-k 相同。",
    sweep_factors: "s 取值",
    sweep_temperatures: "T 取值",
    sweep_run: "开始扫描",
    sweep_running: "已完成 {done} / {total} 张",
    notebook: "笔记本 {number} · {heading}",
    footer: "课程模型由 onnxruntime-web（WebAssembly，单线程）运行；分词器和采样器是纯 JavaScript，"
      + "并与 PyTorch 对照测试。图像为 64 × 64：课程的 VQGAN 训练时没有用 DALL·E 的感知损失和对抗损失，所以边缘较软。",
  },
};

export const LANGUAGES = Object.keys(STRINGS);

let language = "en";

export function getLanguage() {
  return language;
}

/** The string `key` in the current language, with {name} replaced by values[name]. */
export function t(key, values = {}) {
  const text = STRINGS[language][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? `{${name}}`));
}

/** Switch the language and rewrite every element that carries data-i18n. */
export function setLanguage(next) {
  if (!STRINGS[next]) throw new Error(`unknown language ${next}; choose one of ${LANGUAGES.join(", ")}`);
  language = next;
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of document.querySelectorAll("[data-i18n-title]")) element.title = t(element.dataset.i18nTitle);
  document.title = t("title");
}
