// A seeded random number generator: the same seed gives the same uniforms in every browser.
//
// xoshiro128** (Blackman and Vigna), its 128-bit state filled from the seed by splitmix32.
// PyTorch's generator (a Mersenne Twister) is not reproduced: the explorer draws the same
// tokens as PyTorch only where no randomness is involved (top-k = 1), and the sampler itself
// is tested against a Python reference given the same uniforms (docs/explorer.md).

function splitmix32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x, k) => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Random {
  /** @param {number} seed an integer; only its low 32 bits matter */
  constructor(seed) {
    const next = splitmix32(seed);
    this.s = [next(), next(), next(), next()];
  }

  /** The next 32 random bits, as an unsigned integer. */
  nextUint32() {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    for (let i = 0; i < 4; i++) s[i] >>>= 0;
    return result;
  }

  /** A uniform number in [0, 1) with 53 random bits, as Math.random gives. */
  uniform() {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992; // (high * 2^26 + low) / 2^53
  }
}
