/**
 * Glob matching as Redis's stringmatchlen (used by COMMAND LIST FILTERBY PATTERN): `*`, `?`,
 * `[abc]`, `[^a-z]`, and `\` to escape. Iterative with backtracking to the last `*`, so the
 * cost is bounded by pattern length x text length.
 */
export function globMatch(pattern: string, text: string, nocase = false): boolean {
  const p = nocase ? pattern.toLowerCase() : pattern;
  const t = nocase ? text.toLowerCase() : text;
  let pi = 0;
  let ti = 0;
  let starP = -1;
  let starT = 0;
  while (ti < t.length) {
    if (pi < p.length) {
      const c = p[pi];
      if (c === '*') {
        starP = pi++;
        starT = ti;
        continue;
      }
      if (c === '?') {
        pi++;
        ti++;
        continue;
      }
      if (c === '[') {
        const end = classEnd(p, pi);
        if (classMatches(p, pi + 1, end, t[ti]!)) {
          pi = end + 1;
          ti++;
          continue;
        }
      } else {
        let literal = c;
        let width = 1;
        if (c === '\\' && pi + 1 < p.length) {
          literal = p[pi + 1];
          width = 2;
        }
        if (literal === t[ti]) {
          pi += width;
          ti++;
          continue;
        }
      }
    }
    if (starP < 0) return false;
    pi = starP + 1;
    ti = ++starT;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** Index of the `]` closing the class opened at `open` (or the pattern's end). */
function classEnd(p: string, open: number): number {
  let i = open + 1;
  if (p[i] === '^') i++;
  for (; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === ']') return i;
  }
  return p.length;
}

function classMatches(p: string, start: number, end: number, ch: string): boolean {
  let i = start;
  let negate = false;
  if (p[i] === '^') {
    negate = true;
    i++;
  }
  let match = false;
  while (i < end) {
    let c = p[i]!;
    if (c === '\\' && i + 1 < end) {
      c = p[++i]!;
      if (c === ch) match = true;
      i++;
    } else if (i + 2 < end && p[i + 1] === '-') {
      let lo = c;
      let hi = p[i + 2]!;
      if (lo > hi) [lo, hi] = [hi, lo];
      if (ch >= lo && ch <= hi) match = true;
      i += 3;
    } else {
      if (c === ch) match = true;
      i++;
    }
  }
  return negate ? !match : match;
}
