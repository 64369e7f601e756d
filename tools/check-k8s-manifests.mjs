// Validates rendered Kubernetes manifests without a cluster:
//   * every document against the Kubernetes OpenAPI schemas (npm
//     kubernetes-models) or the Prometheus Operator CRDs
//     (@kubernetes-models/prometheus-operator);
//   * every container running the sockdiag-exporter image against the
//     privilege policy the Helm chart encodes (docs/kubernetes.md):
//     drop ALL, add only NET_ADMIN (conntrack) / SYS_ADMIN + SYS_PTRACE (pods
//     mode) / NET_BIND_SERVICE (a listen port below 1024, and then it must
//     be there), the exporter's own table (src/caps.cc); uid 0 exactly when something is added (Kubernetes gives a
//     non-root process no added capability), else runAsNonRoot; no privilege
//     escalation, read-only root, seccomp RuntimeDefault, probes on /-/healthy
//     and /-/ready at the listen port (with --web.config.file also TCP
//     probes, or /-/healthy for readiness: kubelet has no client certificate
//     and no password); no host path but, in pods mode, the
//     --netns.run-dir directory read-only.
// The OpenAPI schemas of kubernetes-models allow unknown fields; --strict
// adds what a strict API server (kubectl apply --validate=strict) rejects:
//   * unknown (misspelled) fields, against JSON schemas generated from the
//     models' type declarations (k8s-kinds.ts, ts-json-schema-generator,
//     additionalProperties false); a kind missing there is an error;
//   * numbers not written as integers (1e+06, 1.0): Kubernetes' integer
//     fields reject them;
//   * two objects of the same kind, namespace and name.
//
// Usage:
//   node check-k8s-manifests.mjs [--strict] FILE...  each must pass
//   node check-k8s-manifests.mjs --bad DIR            each DIR/*.yaml must fail,
//        with an error containing its "# expect: TEXT" line
//   node check-k8s-manifests.mjs --chart-payloads CHART_DIR
//        the PrometheusRule and dashboard ConfigMaps the chart builds from
//        CHART_DIR/files (the same wrapping as its templates); nothing to
//        check when files/ is empty
// Exit 0 when all hold, 1 otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse, visit, isScalar } from 'yaml';
import Ajv from 'ajv';

const IMAGE = /(^|\/)sockdiag-exporter([:@]|$)/;
const FEATURE_CAPS = new Set(['NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE', 'NET_BIND_SERVICE']);

async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
  const spec = apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  try {
    const mod = await import(spec);
    return mod[kind] ?? mod.default ?? null;
  } catch {
    return null;
  }
}

async function schemaErrors(obj) {
  const Model = await modelFor(obj?.apiVersion, obj?.kind);
  if (!Model) return [`unknown apiVersion/kind ${obj?.apiVersion}/${obj?.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    if (!e.errors) throw e;
    return e.errors.map((x) => `${x.instancePath || '/'} ${x.message}`);
  }
}

function podSpecOf(obj) {
  if (obj.kind === 'Pod') return obj.spec;
  return obj.spec?.template?.spec;  // DaemonSet, Deployment, StatefulSet, Job
}

function listenPort(args) {
  const flag = (args ?? []).find((a) => a.startsWith('--web.listen-address='));
  const port = flag ? Number(flag.slice(flag.lastIndexOf(':') + 1)) : 10061;
  return port;
}

function policyErrors(obj) {
  const pod = podSpecOf(obj);
  if (!pod) return [];
  const errors = [];
  for (const c of pod.containers ?? []) {
    if (!IMAGE.test(c.image ?? '')) continue;
    const where = `container ${c.name}`;
    const sc = c.securityContext ?? {};
    const psc = pod.securityContext ?? {};
    const args = c.args ?? [];
    const drop = sc.capabilities?.drop ?? [];
    const add = sc.capabilities?.add ?? [];
    if (!drop.includes('ALL')) errors.push(`${where}: capabilities.drop must include ALL`);
    for (const cap of add) {
      if (!FEATURE_CAPS.has(cap)) errors.push(`${where}: capability ${cap} is needed by no feature`);
    }
    if (sc.allowPrivilegeEscalation !== false) errors.push(`${where}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) errors.push(`${where}: readOnlyRootFilesystem must be true`);
    if (sc.privileged === true) errors.push(`${where}: must not be privileged`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault') errors.push(`${where}: seccompProfile must be RuntimeDefault`);

    const uid = sc.runAsUser ?? psc.runAsUser;
    const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    if (add.length > 0 && uid !== 0) {
      errors.push(`${where}: adds ${add.join(',')} but runs as uid ${uid ?? '(image default)'}: ` +
        'a non-root process gets no added capability; run as uid 0');
    }
    if (add.length === 0 && (uid === 0 || uid === undefined || nonRoot !== true)) {
      errors.push(`${where}: needs no capability, so must run as a non-root runAsUser with runAsNonRoot`);
    }

    const pods = args.includes('--netns.mode=pods');
    const podsCaps = add.includes('SYS_ADMIN') && add.includes('SYS_PTRACE');
    if (pods && (!podsCaps || pod.hostPID !== true)) {
      errors.push(`${where}: --netns.mode=pods needs hostPID and SYS_ADMIN + SYS_PTRACE`);
    }
    if (!pods && (add.includes('SYS_ADMIN') || add.includes('SYS_PTRACE') || pod.hostPID === true)) {
      errors.push(`${where}: SYS_ADMIN/SYS_PTRACE/hostPID without --netns.mode=pods`);
    }
    const conntrackOff = args.includes('--no-collector.conntrack') &&
      args.includes('--no-collector.conntrack_table');
    if (!add.includes('NET_ADMIN') && !conntrackOff) {
      errors.push(`${where}: without NET_ADMIN pass --no-collector.conntrack and ` +
        '--no-collector.conntrack_table (else the collectors fail every poll)');
    }
    if (add.includes('NET_ADMIN') && conntrackOff) {
      errors.push(`${where}: NET_ADMIN with the conntrack collectors off is needed by nothing`);
    }

    // Host paths: only the netns run dir of pods mode, read-only.
    const runDir = args.find((a) => a.startsWith('--netns.run-dir='))?.slice('--netns.run-dir='.length);
    for (const v of pod.volumes ?? []) {
      if (!v.hostPath) continue;
      const mounts = (c.volumeMounts ?? []).filter((m) => m.name === v.name);
      if (!pods) errors.push(`${where}: host path ${v.hostPath.path} mounted without --netns.mode=pods`);
      for (const m of mounts) {
        if (m.mountPath !== runDir) {
          errors.push(`${where}: host path ${v.hostPath.path} mounted at ${m.mountPath}, which is not --netns.run-dir`);
        }
        if (m.readOnly !== true) errors.push(`${where}: host path ${v.hostPath.path} must be mounted read-only`);
      }
    }
    const port = listenPort(args);
    if (port < 1024 && !add.includes('NET_BIND_SERVICE')) {
      errors.push(`${where}: listen port ${port} is privileged: needs NET_BIND_SERVICE`);
    }
    if (port >= 1024 && add.includes('NET_BIND_SERVICE')) {
      errors.push(`${where}: NET_BIND_SERVICE with listen port ${port} is needed by nothing`);
    }
    const named = (c.ports ?? []).find((p) => p.containerPort === port);
    if (!named) errors.push(`${where}: no containerPort ${port} (the --web.listen-address port)`);
    // With a web config (TLS, client certificates, basic auth) kubelet may
    // have to probe over TCP (it has no client certificate) or the open
    // /-/healthy (it has no password).
    const webConfig = args.some((a) => a.startsWith('--web.config.file='));
    const portOf = (p) => (typeof p === 'string' ? (c.ports ?? []).find((x) => x.name === p)?.containerPort : p);
    for (const [probe, want] of [['livenessProbe', ['/-/healthy']], ['readinessProbe', ['/-/ready', '/-/healthy']]]) {
      const get = c[probe]?.httpGet;
      const tcp = c[probe]?.tcpSocket;
      const okPaths = webConfig ? want : want.slice(0, 1);
      const ok = get ? okPaths.includes(get.path) && portOf(get.port) === port && (webConfig || get.scheme !== 'HTTPS')
        : tcp && webConfig && portOf(tcp.port) === port;
      if (!ok) {
        errors.push(`${where}: ${probe} must be GET ${okPaths.join(' or ')} on port ${port}` +
          (webConfig ? ' (or a TCP probe of it)' : ''));
      }
    }
  }
  return errors;
}

// --strict: one JSON schema per kind of k8s-kinds.ts, unknown fields rejected.
let strictValidators = null;
async function strictValidator(apiVersion, kind) {
  if (strictValidators === null) {
    const { createGenerator } = await import('ts-json-schema-generator');
    const here = path.dirname(fileURLToPath(import.meta.url));
    const schema = createGenerator({
      path: path.join(here, 'k8s-kinds.ts'), tsconfig: path.join(here, 'k8s-kinds.tsconfig.json'),
      type: 'Manifests', skipTypeCheck: true, additionalProperties: false,
    }).createSchema('Manifests');
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addSchema(schema, 'k8s');
    strictValidators = { ajv, kinds: new Set(Object.keys(schema.definitions.Manifests.properties)), compiled: new Map() };
  }
  const key = `${apiVersion}/${kind}`;
  if (!strictValidators.kinds.has(key)) return null;
  if (!strictValidators.compiled.has(key)) {
    strictValidators.compiled.set(key,
      strictValidators.ajv.compile({ $ref: `k8s#/definitions/Manifests/properties/${key.replaceAll('~', '~0').replaceAll('/', '~1')}` }));
  }
  return strictValidators.compiled.get(key);
}

async function strictErrors(doc, obj) {
  const errors = [];
  const validate = await strictValidator(obj.apiVersion, obj.kind);
  if (!validate) {
    errors.push(`no strict schema for ${obj.apiVersion}/${obj.kind} (add it to tools/k8s-kinds.ts)`);
  } else if (!validate(obj)) {
    for (const e of validate.errors) {
      const extra = e.params?.additionalProperty ? `: unknown field "${e.params.additionalProperty}"` : '';
      // anyOf/oneOf branches repeat the real error; keep the specific ones.
      if (e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
      errors.push(`strict: ${e.instancePath || '/'} ${e.message}${extra}`);
    }
  }
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'number' && node.type === 'PLAIN' &&
          !/^-?(0|[1-9][0-9]*)$/.test(node.source ?? String(node.value))) {
        errors.push(`strict: number written as ${node.source}: Kubernetes integer fields reject it`);
      }
    },
  });
  return [...new Set(errors)];
}

async function checkDocuments(file, text, strict = false) {
  const problems = [];
  const docs = parseAllDocuments(text);
  const seen = new Set();
  let n = 0;
  for (const doc of docs) {
    if (doc.errors.length) { problems.push(`${file}: ${doc.errors[0].message}`); continue; }
    const obj = doc.toJS();
    if (obj === null) continue;
    n++;
    const name = `${obj.kind}/${obj.metadata?.name}`;
    for (const e of await schemaErrors(obj)) problems.push(`${file}: ${name}: ${e}`);
    for (const e of policyErrors(obj)) problems.push(`${file}: ${name}: ${e}`);
    if (strict) {
      for (const e of await strictErrors(doc, obj)) problems.push(`${file}: ${name}: ${e}`);
      const id = `${obj.apiVersion}/${obj.kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
      if (seen.has(id)) problems.push(`${file}: ${name}: strict: two objects named ${id}`);
      seen.add(id);
    }
  }
  return { problems, count: n };
}

// The chart's PrometheusRule and dashboard ConfigMaps, built from files/ the
// way templates/prometheusrule.yaml and templates/dashboards-configmap.yaml do.
function chartPayloads(chartDir) {
  const out = [];
  const files = path.join(chartDir, 'files');
  const rulesDir = path.join(files, 'rules');
  const rules = fs.existsSync(rulesDir) ? fs.readdirSync(rulesDir).filter((f) => f.endsWith('.yaml')).sort() : [];
  for (const f of rules) {
    const file = path.join(rulesDir, f);
    out.push({
      file,
      obj: {
        apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule',
        metadata: { name: 'sockdiag-exporter', namespace: 'monitoring' },
        spec: parse(fs.readFileSync(file, 'utf8')),
      },
    });
  }
  const dashDir = path.join(files, 'dashboards');
  const jsons = fs.existsSync(dashDir) ? fs.readdirSync(dashDir).filter((f) => f.endsWith('.json')).sort() : [];
  for (const f of jsons) {
    const text = fs.readFileSync(path.join(dashDir, f), 'utf8');
    const name = `sockdiag-exporter-${f.replace(/\.json$/, '').toLowerCase().replaceAll('_', '-')}`.slice(0, 63);
    out.push({
      file: path.join(dashDir, f),
      text,
      obj: {
        apiVersion: 'v1', kind: 'ConfigMap',
        metadata: { name, namespace: 'monitoring', labels: { grafana_dashboard: '1' } },
        data: { [f.startsWith('sockdiag-') ? f : `sockdiag-${f}`]: text },
      },
    });
  }
  return out;
}

let argv = process.argv.slice(2);
const strict = argv[0] === '--strict';
if (strict) argv = argv.slice(1);
const problems = [];
let summary;
if (argv[0] === '--bad') {
  const dir = argv[1];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    const expect = /^# expect: (.+)$/m.exec(text)?.[1];
    if (!expect) { problems.push(`${f}: no "# expect: TEXT" line`); continue; }
    const { problems: found } = await checkDocuments(f, text, strict);
    if (found.length === 0) problems.push(`${f}: accepted, but must be rejected (${expect})`);
    else if (!found.some((e) => e.includes(expect))) {
      problems.push(`${f}: rejected for another reason: ${found.join('; ')} (want "${expect}")`);
    }
  }
  summary = `${files.length} bad manifests rejected`;
} else if (argv[0] === '--chart-payloads') {
  const payloads = chartPayloads(argv[1]);
  for (const { file, obj, text } of payloads) {
    for (const e of await schemaErrors(obj)) problems.push(`${file}: ${obj.kind}: ${e}`);
    if (text !== undefined) {
      try { JSON.parse(text); } catch (e) { problems.push(`${file}: not JSON: ${e.message}`); }
      // The API server's limit for one ConfigMap; client-side kubectl apply
      // also stores the object in a 256 KiB annotation.
      if (Buffer.byteLength(text) > 1024 * 1024) problems.push(`${file}: larger than a ConfigMap can hold (1 MiB)`);
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(obj.metadata.name)) {
        problems.push(`${file}: ConfigMap name ${obj.metadata.name} is not a DNS label`);
      }
    }
  }
  summary = payloads.length
    ? `${payloads.length} chart payload(s) valid as PrometheusRule/ConfigMap`
    : 'no chart payloads in files/ yet: nothing to check';
} else {
  if (argv.length === 0) {
    console.error('usage: node check-k8s-manifests.mjs [--strict] FILE... | [--strict] --bad DIR | --chart-payloads CHART_DIR');
    process.exit(2);
  }
  let count = 0;
  for (const f of argv) {
    const r = await checkDocuments(f, fs.readFileSync(f, 'utf8'), strict);
    problems.push(...r.problems);
    count += r.count;
  }
  summary = `${count} manifests in ${argv.length} file(s) valid${strict ? ' (strict)' : ''}`;
}
for (const p of problems) console.log(p);
console.log(problems.length ? `${problems.length} problem(s)` : summary);
process.exit(problems.length ? 1 : 0);
