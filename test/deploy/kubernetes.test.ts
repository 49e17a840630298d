import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ROLE_PORTS, type RoleName } from '../../src/role-names.js';
import { ROOT } from '../helpers/cli.js';

/**
 * deploy/kubernetes (kustomize base and overlays) against the Kubernetes OpenAPI schema, as
 * compiled into the `kubernetes-models` validators (no cluster runs here, and nothing is
 * downloaded at test time), plus what the issue asks of each manifest.
 */

const DIR = path.join(ROOT, 'deploy/kubernetes');
const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/ServiceAccount': ServiceAccount,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Kustomization {
  resources: string[];
  replicas?: Array<{ name: string; count: number }>;
  images?: Array<{ name: string; newTag?: string }>;
}

/** The manifests of a kustomization: its resources, with the replicas and images transformers applied (what this overlay layout uses). */
function build(dir: string): Manifest[] {
  const k = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const known = new Set(['apiVersion', 'kind', 'resources', 'replicas', 'images', 'labels']);
  assert.deepEqual(
    Object.keys(k).filter((key) => !known.has(key)),
    [],
    `${dir}: a kustomize field this test does not render`,
  );
  const out = k.resources.flatMap((r) => {
    const full = path.join(dir, r);
    if (!r.endsWith('.yaml')) return build(full);
    return parseAllDocuments(readFileSync(full, 'utf8')).map((d) => {
      assert.deepEqual(d.errors, [], `${full}: ${d.errors.join('; ')}`);
      return d.toJSON() as Manifest;
    });
  });
  for (const r of k.replicas ?? []) {
    const d = out.find((m) => m.kind === 'Deployment' && m.metadata.name === r.name);
    assert.ok(d, `${dir}: replicas for unknown deployment ${r.name}`);
    d.spec.replicas = r.count;
  }
  for (const img of k.images ?? [])
    for (const d of out.filter((m) => m.kind === 'Deployment'))
      for (const c of d.spec.template.spec.containers) if (c.image.split(':')[0] === img.name) c.image = `${img.name}:${img.newTag}`;
  return out;
}

function validate(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion}/${m.kind}`];
  assert.ok(Model, `no schema for ${m.apiVersion} ${m.kind}`);
  new Model(m as never).validate();
}

const overlays = readdirSync(path.join(DIR, 'overlays'));
const targets = [{ name: 'base', dir: path.join(DIR, 'base') }, ...overlays.map((o) => ({ name: `overlay ${o}`, dir: path.join(DIR, 'overlays', o) }))];

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  for (const t of targets) {
    it(`${t.name}: every manifest validates against the Kubernetes OpenAPI schema`, () => {
      const manifests = build(t.dir);
      assert.ok(manifests.length >= 20, `only ${manifests.length} manifests`);
      for (const m of manifests) assert.doesNotThrow(() => validate(m), `${m.kind} ${m.metadata.name}`);
    });
  }

  it('the schema check fails on a wrong type (it can fail)', () => {
    const core = build(path.join(DIR, 'base')).find((m) => m.kind === 'Deployment' && m.metadata.name === 'frostgate-core')!;
    const broken = structuredClone(core);
    broken.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    assert.throws(() => validate(broken), /containerPort must be integer/);
    const noImage = structuredClone(core);
    delete noImage.spec.template.spec.containers[0].name;
    assert.throws(() => validate(noImage), /name/);
  });

  const base = build(path.join(DIR, 'base'));
  const deployments = base.filter((m) => m.kind === 'Deployment');

  it('one Deployment and Service per role on its port, probes on /health/live and /health/ready, requests and limits', () => {
    const roles = Object.keys(ROLE_PORTS).filter((r) => r !== 'all') as RoleName[];
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), roles.map((r) => `frostgate-${r}`).sort());
    for (const role of roles) {
      const d = deployments.find((m) => m.metadata.name === `frostgate-${role}`)!;
      const c = d.spec.template.spec.containers[0];
      assert.deepEqual(c.args, ['serve', '--role', role]);
      assert.equal(c.ports[0].containerPort, ROLE_PORTS[role]);
      assert.equal(c.livenessProbe.httpGet.path, '/health/live');
      assert.equal(c.readinessProbe.httpGet.path, '/health/ready');
      for (const kind of ['requests', 'limits']) for (const r of ['cpu', 'memory']) assert.ok(c.resources[kind][r], `${role}: ${kind}.${r}`);
      const svc = base.find((m) => m.kind === 'Service' && m.metadata.name === role)!;
      assert.equal(svc.spec.ports[0].port, ROLE_PORTS[role]);
      assert.equal(svc.metadata.namespace, d.metadata.namespace);
    }
  });

  it('PodSecurity restricted for every role but the lab worker, which runs in its own privileged namespace', () => {
    const ns = new Map(base.filter((m) => m.kind === 'Namespace').map((m) => [m.metadata.name, m.metadata.labels?.['pod-security.kubernetes.io/enforce']]));
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const c = pod.containers[0];
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      if (d.metadata.name === 'frostgate-worker') {
        assert.equal(ns.get(d.metadata.namespace!), 'privileged');
        assert.ok(c.securityContext.capabilities.add.includes('NET_ADMIN'));
        continue;
      }
      assert.equal(ns.get(d.metadata.namespace!), 'restricted', d.metadata.name);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(c.securityContext.runAsNonRoot, true);
      assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault');
      assert.equal(c.securityContext.capabilities.add, undefined);
    }
  });

  it('default-deny NetworkPolicies in both namespaces, a PodDisruptionBudget for core, no Secret in the bundle', () => {
    const policies = base.filter((m) => m.kind === 'NetworkPolicy');
    for (const ns of ['frostgate', 'frostgate-labs']) {
      const deny = policies.find((p) => p.metadata.namespace === ns && p.metadata.name === 'default-deny');
      assert.ok(deny, ns);
      assert.deepEqual(deny.spec.podSelector, {});
      assert.deepEqual(deny.spec.policyTypes, ['Ingress', 'Egress']);
    }
    for (const d of deployments) {
      const net = d.spec.template.metadata.labels['frostgate.io/network'];
      assert.ok(
        policies.some((p) => p.metadata.namespace === d.metadata.namespace && p.spec.podSelector.matchLabels?.['frostgate.io/network'] === net),
        `${d.metadata.name}: no policy for network ${net}`,
      );
    }
    const pdb = base.find((m) => m.kind === 'PodDisruptionBudget')!;
    assert.equal(pdb.spec.selector.matchLabels['app.kubernetes.io/component'], 'core');
    assert.equal(base.filter((m) => m.kind === 'Secret').length, 0);
  });

  it('overlays change replicas and the image tag', () => {
    const prod = build(path.join(DIR, 'overlays/production'));
    const core = prod.find((m) => m.kind === 'Deployment' && m.metadata.name === 'frostgate-core')!;
    assert.equal(core.spec.replicas, 3);
    assert.match(core.spec.template.spec.containers[0].image, /^frostgate:\d/);
  });
});
