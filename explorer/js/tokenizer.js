// Text to token ids, as dalle_core/tokenizer.py (and min-dalle) makes them:
//   emoji -> their English names, lower case, ASCII only, split on single spaces,
//   then byte-pair encoding of each word from ['Ġ', ...letters], merging the lowest-ranked
//   adjacent pair until no pair is in merges.txt.
// tests/browser/test_explorer.py compares the ids with TextTokenizer's on 2,000 training
// captions and on edge cases (emoji, punctuation, unknown words, prompts over 64 tokens).

export const WORD_START = "\u0120"; // 'Ġ': marks the start of a word
const ZWJ = "\u200d"; // zero-width joiner, which glues emoji into one
const VARIATION_SELECTORS = new Set(["\ufe0e", "\ufe0f"]);
// the characters Python's str.split() splits on (str.isspace)
const PYTHON_WHITE_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** Emoji -> name, as `emoji.demojize(text, delimiters=("", ""))` does (emoji 2.x): it walks a
 *  tree of every known emoji as far as the text follows it, takes the emoji if the walk ends
 *  on one, and handles zero-width-joined sequences the table lacks one part at a time. */
export class Demojizer {
  /** @param {{names: Object<string,string>, components: string[]}} table from model/emoji.json */
  constructor(table) {
    this.names = new Map(Object.entries(table.names));
    this.components = new Set(table.components);
    this.tree = new Map();
    for (const emoji of this.names.keys()) {
      let node = this.tree;
      for (const char of emoji) {
        if (!node.has(char)) node.set(char, new Map());
        node = node.get(char);
      }
      node.set("", emoji); // "" cannot be a character: it marks the end of an emoji
    }
  }

  demojize(text) {
    const chars = Array.from(text); // code points, as Python indexes a str
    const out = [];
    let pending = []; // tokens not yet final: {chars, emoji?}
    const ignore = new Set(); // joiners inside a sequence the table lacks, skipped
    let i = 0;
    while (i < chars.length) {
      let consumed = false;
      const char = chars[i];
      if (ignore.has(i)) {
        i += 1;
        if (char === ZWJ) pending.push({ chars: char }); // demojize keeps such joiners
        continue;
      } else if (this.tree.has(char)) {
        let j = i + 1;
        let node = this.tree.get(char);
        while (j < chars.length && node.has(chars[j])) {
          if (ignore.has(j)) break;
          node = node.get(chars[j]);
          j += 1;
        }
        if (node.has("")) {
          pending.push({ chars: chars.slice(i, j).join(""), emoji: node.get("") });
          i = j - 1;
          consumed = true;
        }
      } else if (char === ZWJ && pending.length && this.names.has(pending[pending.length - 1].chars)
                 && i > 0 && this.tree.has(chars[i - 1])) {
        // a joiner after an emoji: go back and match the parts one by one
        ignore.add(i);
        const last = pending[pending.length - 1];
        if (this.components.has(last.chars)) {
          const tail = pending.slice(-2);
          i -= tail.reduce((n, t) => n + Array.from(t.chars).length, 0);
          if (chars[i] === ZWJ) {
            i += 1;
            pending.pop();
          } else {
            pending.splice(-2, 2);
          }
        } else {
          i -= Array.from(last.chars).length;
          pending.pop();
        }
        continue;
      } else if (pending.length) {
        out.push(...pending);
        pending = [];
      }
      if (!consumed && !VARIATION_SELECTORS.has(char)) pending.push({ chars: char });
      i += 1;
    }
    out.push(...pending);
    return out.map((t) => (t.emoji === undefined ? t.chars : this.names.get(t.emoji) || t.chars)).join("");
  }
}

/** What the BPE sees: emoji to names, lower case, ASCII only. */
export function normalize(demojizer, text) {
  if (typeof text !== "string") throw new TypeError(`text must be a string, got ${typeof text}`);
  const lower = demojizer.demojize(text).toLowerCase();
  let ascii = "";
  for (const char of lower) if (char.codePointAt(0) < 128) ascii += char;
  return ascii;
}

export class TextTokenizer {
  /** @param tokenizer model/tokenizer.json; @param emoji model/emoji.json */
  constructor(tokenizer, emoji) {
    this.tokenFromSubword = new Map(Object.entries(tokenizer.vocab));
    this.rankFromPair = new Map(tokenizer.merges.map((line, rank) => [line, rank])); // "a b" -> rank
    this.special = tokenizer.special_tokens; // {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    this.textTokenCount = tokenizer.text_token_count;
    this.captionWords = new Set(tokenizer.caption_words);
    this.demojizer = new Demojizer(emoji);
  }

  normalize(text) {
    return normalize(this.demojizer, text);
  }

  /** Merge the lowest-ranked adjacent pair (the leftmost, among equals) until no pair is known. */
  bytePairEncoding(word) {
    let subwords = [WORD_START, ...word];
    while (subwords.length > 1) {
      let bestRank = Infinity;
      let best = -1;
      for (let i = 0; i + 1 < subwords.length; i++) {
        const rank = this.rankFromPair.get(`${subwords[i]} ${subwords[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      subwords = [...subwords.slice(0, best), subwords[best] + subwords[best + 1], ...subwords.slice(best + 2)];
    }
    return subwords;
  }

  /** [<s>] + ids + [</s>], not yet cut to 64 (see fitTokens). */
  tokenize(text) {
    const unk = this.special["<unk>"];
    const ids = [this.special["<s>"]];
    for (const word of this.normalize(text).split(" ")) {
      if (!word) continue;
      for (const subword of this.bytePairEncoding(word)) ids.push(this.tokenFromSubword.get(subword) ?? unk);
    }
    ids.push(this.special["</s>"]);
    return ids;
  }

  /** The words of `text` (split on white space, as written) of which the model can read nothing:
   *  every piece is unknown, or the word has no ASCII left at all (TextTokenizer.unreadable_words). */
  unreadableWords(text) {
    const unk = this.special["<unk>"];
    return splitWords(text).filter((word) => {
      const pieces = this.normalize(word).split(" ").filter(Boolean).flatMap((part) => this.bytePairEncoding(part));
      return pieces.every((piece) => (this.tokenFromSubword.get(piece) ?? unk) === unk);
    });
  }

  /** Words the model can read but never saw in a training caption ("dog": it reads 'Ġd', 'o', 'g'). */
  unseenWords(text) {
    const unreadable = new Set(this.unreadableWords(text));
    return splitWords(text).filter((word) => !unreadable.has(word)
      && this.normalize(word).split(" ").filter(Boolean).some((part) => !this.captionWords.has(part)));
  }
}

export function splitWords(text) {
  return text.split(PYTHON_WHITE_SPACE).filter(Boolean);
}

/** Cut to `count` tokens keeping </s> last (dalle_core.tokenizer.fit_tokens). */
export function fitTokens(tokens, count) {
  if (tokens.length <= count) return tokens.slice();
  return [...tokens.slice(0, count - 1), tokens[tokens.length - 1]];
}

/** text_tokens (2, count) as int64: row 0 the empty prompt [<s>, </s>, pad...], row 1 the prompt. */
export function packTextTokens(tokens, count, padId) {
  const fitted = fitTokens(tokens, count);
  const textTokens = new BigInt64Array(2 * count).fill(BigInt(padId));
  textTokens[0] = BigInt(fitted[0]);
  textTokens[1] = BigInt(fitted[fitted.length - 1]);
  fitted.forEach((id, i) => { textTokens[count + i] = BigInt(id); });
  return textTokens;
}

/** The Python API's refusal (dalle_core.pipeline.check_prompt): a prompt none of whose words the
 *  model can read would draw what the empty prompt draws. Returns the unreadable words, or null if readable. */
export function refusedWords(tokenizer, text) {
  const words = splitWords(text);
  const unreadable = tokenizer.unreadableWords(text);
  return words.length && unreadable.length === words.length ? unreadable : null;
}
