// Checks the Helm chart's values the way `helm install` would, without helm:
//   1. every key of values.yaml (outside list items) has a `##` comment line
//      right above it (the chart's documentation convention);
//   2. values.yaml validates against values.schema.json (draft-07, ajv);
//   3. every ci/*-values.yaml, merged over values.yaml as Helm merges user
//      values (maps deep-merged, lists and scalars replaced, null deletes),
//      validates too;
//   4. every file in BAD_DIR (values that must be rejected), merged the same
//      way, FAILS validation with an error containing its `# expect: TEXT`;
//   5. every .Values.a.b path in templates/ exists in values.yaml (Helm
//      renders a misspelled path as empty without a word).
//
// Usage: node check-chart-values.mjs CHART_DIR BAD_DIR
// Exit 0 when all hold, 1 otherwise (each problem on one line).
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { parse, parseDocument, isMap } from 'yaml';

const [chartDir, badDir] = process.argv.slice(2);
if (!chartDir || !badDir) {
  console.error('usage: node check-chart-values.mjs CHART_DIR BAD_DIR');
  process.exit(2);
}
const problems = [];
const read = (p) => fs.readFileSync(p, 'utf8');

// --- 1. documented keys --------------------------------------------------
const valuesText = read(path.join(chartDir, 'values.yaml'));
const valuesDoc = parseDocument(valuesText);
if (valuesDoc.errors.length) problems.push(`values.yaml: ${valuesDoc.errors[0].message}`);
let keyCount = 0;
function checkComments(node, prefix, inheritedComment) {
  if (!isMap(node)) return;  // list items and scalars need no comment of their own
  node.items.forEach((pair, i) => {
    const key = `${prefix}${pair.key.value}`;
    // The yaml parser hangs the comment above a map's first key on the map
    // (or on the document, for the first top-level key).
    const comment = pair.key.commentBefore ?? (i === 0 ? inheritedComment : undefined);
    const lastLine = (comment ?? '').trimEnd().split('\n').pop() ?? '';
    keyCount++;
    if (!lastLine.startsWith('#')) {
      problems.push(`values.yaml: key ${key} has no "##" comment line right above it`);
    }
    checkComments(pair.value, `${key}.`, pair.value?.commentBefore);
  });
}
checkComments(valuesDoc.contents, '', valuesDoc.contents?.commentBefore ?? valuesDoc.commentBefore);

// --- 2-4. schema -----------------------------------------------------------
const schema = JSON.parse(read(path.join(chartDir, 'values.schema.json')));
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
const validate = ajv.compile(schema);
const errorsOf = (values) =>
  validate(values) ? [] : validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}` +
    (e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''));

// Helm's coalescing of user values over the chart's defaults.
function merge(base, over) {
  if (!isPlainObject(base) || !isPlainObject(over)) return structuredClone(over);
  const out = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = k in out ? merge(out[k], v) : structuredClone(v);
  }
  return out;
}
function isPlainObject(x) { return x !== null && typeof x === 'object' && !Array.isArray(x); }

const defaults = valuesDoc.toJS();
for (const e of errorsOf(defaults)) problems.push(`values.yaml: ${e}`);

const ciDir = path.join(chartDir, 'ci');
const ciFiles = fs.existsSync(ciDir) ? fs.readdirSync(ciDir).filter((f) => f.endsWith('-values.yaml')).sort() : [];
for (const f of ciFiles) {
  const merged = merge(defaults, parse(read(path.join(ciDir, f))) ?? {});
  for (const e of errorsOf(merged)) problems.push(`ci/${f}: ${e}`);
}

const badFiles = fs.readdirSync(badDir).filter((f) => f.endsWith('.yaml')).sort();
for (const f of badFiles) {
  const text = read(path.join(badDir, f));
  const expect = /^# expect: (.+)$/m.exec(text)?.[1];
  if (!expect) { problems.push(`${f}: no "# expect: TEXT" line`); continue; }
  const errors = errorsOf(merge(defaults, parse(text) ?? {}));
  if (errors.length === 0) problems.push(`${f}: accepted, but must be rejected (${expect})`);
  else if (!errors.some((e) => e.includes(expect))) {
    problems.push(`${f}: rejected for another reason: ${errors.join('; ')} (want "${expect}")`);
  }
}

// --- 5. template references ----------------------------------------------
// Helm renders a misspelled .Values path as empty, silently: every absolute
// .Values.a.b path in templates/ must exist in values.yaml.
const tplDir = path.join(chartDir, 'templates');
let refCount = 0;
for (const f of fs.readdirSync(tplDir).sort()) {
  const text = read(path.join(tplDir, f));
  for (const m of text.matchAll(/\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
    refCount++;
    let node = defaults;
    for (const key of m[1].slice(1).split('.')) {
      if (!isPlainObject(node) || !(key in node)) {
        problems.push(`templates/${f}: ${m[0]} is not a key of values.yaml`);
        break;
      }
      node = node[key];
    }
  }
}

for (const p of problems) console.log(p);
console.log(`values.yaml: ${keyCount} keys documented and valid; ` +
  `${ciFiles.length} ci scenarios valid; ${badFiles.length} bad values rejected; ` +
  `${refCount} .Values references in templates exist: ` +
  (problems.length ? `${problems.length} problem(s)` : 'ok'));
process.exit(problems.length ? 1 : 0);
