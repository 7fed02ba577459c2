import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { KeyStore } from '../../src/auth/key-store.js';
import { ENV_KEYS, LOADER_ENV, STANDARD_ENV_KEYS } from '../../src/config/config.env.js';
import { loadConfig } from '../../src/config/config.loader.js';
import { runTool } from '../support/system-tools.js';

// The objects `kubectl apply -k deploy/kubernetes` sends to the API server, as kustomize renders them
// (images, namespace and YAML 1.1 octals resolved), and the Secret example beside them.

type Labels = Record<string, string>;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels; namespace?: string };
  [key: string]: unknown;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
  periodSeconds?: number;
  failureThreshold?: number;
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports: Array<{ name: string; containerPort: number }>;
  envFrom: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  env: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface PodSpec {
  enableServiceLinks?: boolean;
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  topologySpreadConstraints?: Array<{ labelSelector: { matchLabels: Labels } }>;
  affinity?: unknown;
  containers: Container[];
  volumes: Array<{
    name: string;
    persistentVolumeClaim?: { claimName: string };
    secret?: { secretName: string; defaultMode?: number };
    emptyDir?: Record<string, unknown>;
  }>;
}

const DIR = path.resolve('deploy/kubernetes');
const SECRET_EXAMPLE = 'secret.example.yaml';

/**
 * Validates an object against the Kubernetes OpenAPI schema of its apiVersion and kind, with the model
 * classes kubernetes-models generates from those schemas; resolves with the kind, or throws what is wrong.
 */
async function validateAgainstSchema(doc: Manifest): Promise<string> {
  const models = (await import(`kubernetes-models/${doc.apiVersion}`)) as Record<
    string,
    new (data: unknown) => { validate(): void }
  >;
  const Model = models[doc.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
  return doc.kind;
}

/** The applied set, rendered by kustomize; fails (rather than skips) without kubectl. */
function kustomize(): Manifest[] {
  const run = runTool('kubectl', ['kustomize', DIR], { debianPackage: 'kubernetes-client' });
  if (run.status !== 0) throw new Error(`kubectl kustomize ${DIR} failed:\n${run.output}`);
  return parseAllDocuments(run.stdout).map((doc) => doc.toJS() as Manifest);
}

const rendered = kustomize();
const one = (kind: string): Manifest => {
  const found = rendered.filter((doc) => doc.kind === kind);
  expect(found).toHaveLength(1);
  return found[0] as Manifest;
};

const deployment = one('Deployment') as Manifest & {
  spec: {
    replicas: number;
    selector: { matchLabels: Labels };
    template: { metadata: { labels: Labels }; spec: PodSpec };
  };
};
const pod = deployment.spec.template.spec;
const podLabels = deployment.spec.template.metadata.labels;
const container = pod.containers[0] as Container;
const configMap = one('ConfigMap') as Manifest & { data: Record<string, string> };
const secrets = parseAllDocuments(readFileSync(path.join(DIR, SECRET_EXAMPLE), 'utf8')).map((doc) =>
  doc.toJS(),
) as Array<Manifest & { stringData: Record<string, string> }>;
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

/** Whether a selector's labels all hold on the pods. */
function selects(selector: Labels | undefined): boolean {
  return (
    selector !== undefined &&
    Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => podLabels[k] === v)
  );
}

function envOf(): Record<string, string> {
  return Object.fromEntries(container.env.map((e) => [e.name, e.value ?? '']));
}

/** What a pod's process sees: the ConfigMap, the Secret (its example), then the container's own env. */
const podEnv: Record<string, string> = {
  ...configMap.data,
  ...Object.fromEntries(
    secrets.filter((s) => s.metadata.name === 'bastion-secrets').flatMap((s) => Object.entries(s.stringData)),
  ),
  ...envOf(),
};

/** Bastion's configuration in a pod named bastion-0, loaded as the server loads it. */
function podConfig(): ReturnType<typeof loadConfig> {
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'bastion-k8s-'));
  try {
    const env = {
      ...podEnv,
      BASTION_AUDIT_FILE: podEnv.BASTION_AUDIT_FILE?.replace('$(POD_NAME)', 'bastion-0'),
    };
    return loadConfig({ env, cwd });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

function mountOf(name: string): Container['volumeMounts'][number] | undefined {
  return container.volumeMounts.find((m) => m.name === name);
}

describe('Kubernetes manifests', () => {
  it('render (kustomize) into the objects Bastion runs on, each labelled app.kubernetes.io/name=bastion', () => {
    expect(rendered.map((doc) => doc.kind).sort()).toEqual(
      [
        'ConfigMap',
        'Deployment',
        'HorizontalPodAutoscaler',
        'Namespace',
        'NetworkPolicy',
        'PersistentVolumeClaim',
        'PersistentVolumeClaim',
        'PodDisruptionBudget',
        'Service',
      ].sort(),
    );
    for (const doc of rendered) {
      expect({
        object: `${doc.kind}/${doc.metadata.name}`,
        label: doc.metadata.labels?.['app.kubernetes.io/name'],
      }).toEqual({ object: `${doc.kind}/${doc.metadata.name}`, label: 'bastion' });
    }
  });

  it('are each valid against the Kubernetes OpenAPI schema of its kind (kubernetes-models)', async () => {
    for (const doc of rendered) await expect(validateAgainstSchema(doc)).resolves.toBe(doc.kind);
  });

  it('would be refused by that schema check when a field has the wrong type', async () => {
    const broken = structuredClone(deployment) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'two';
    await expect(validateAgainstSchema(broken as unknown as Manifest)).rejects.toThrow(/replicas/);
    // The API server takes unknown keys (it warns), so the schema does not refuse them; types it does.
    const service = structuredClone(one('Service')) as unknown as {
      spec: { ports: Array<{ port: unknown }> };
    };
    (service.spec.ports[0] as { port: unknown }).port = 'eighty';
    await expect(validateAgainstSchema(service as unknown as Manifest)).rejects.toThrow(/port/);
  });

  it('list every manifest of the directory in kustomization.yaml, except the Secret example', () => {
    const kustomization = parse(readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
    const expected = files.filter((f) => f !== 'kustomization.yaml' && f !== SECRET_EXAMPLE);
    expect([...kustomization.resources].sort()).toEqual(expected.sort());
  });

  it('deploy the image the repository builds, tagged with its release', () => {
    expect(container.image).toMatch(new RegExp(`(^|/)bastion:${version.replace(/\./g, '\\.')}$`));
  });

  it('keep Secrets out of the applied set: the example holds placeholders only', () => {
    expect(rendered.filter((doc) => doc.kind === 'Secret')).toEqual([]);
    expect(secrets.map((s) => s.kind)).toEqual(['Secret', 'Secret']);
    for (const secret of secrets) {
      for (const value of Object.values(secret.stringData)) {
        if (!value.startsWith('{')) expect(value).toMatch(/REPLACE/);
      }
    }
  });
});

describe('Deployment', () => {
  it('runs two replicas whose pods its selector, the Service, the PDB and the NetworkPolicy all select', () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(selects(deployment.spec.selector.matchLabels)).toBe(true);
    const service = one('Service') as Manifest & {
      spec: { selector: Labels; ports: Array<{ targetPort: string | number; port: number }> };
    };
    expect(selects(service.spec.selector)).toBe(true);
    const pdb = one('PodDisruptionBudget') as Manifest & {
      spec: { minAvailable: number; selector: { matchLabels: Labels } };
    };
    expect(selects(pdb.spec.selector.matchLabels)).toBe(true);
    expect(pdb.spec.minAvailable).toBe(1);
    const policy = one('NetworkPolicy') as Manifest & { spec: { podSelector: { matchLabels: Labels } } };
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true);
    // The Service reaches the container's port.
    const target = service.spec.ports[0]?.targetPort;
    expect(container.ports.some((p) => p.name === target || p.containerPort === target)).toBe(true);
  });

  it('is scaled by an autoscaling/v2 HPA on CPU and memory, never below the PDB', () => {
    const hpa = one('HorizontalPodAutoscaler') as Manifest & {
      spec: {
        scaleTargetRef: { kind: string; name: string; apiVersion: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: Array<{ resource: { name: string; target: { type: string } } }>;
      };
    };
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    });
    expect(hpa.spec.metrics.map((m) => m.resource.name).sort()).toEqual(['cpu', 'memory']);
    expect(hpa.spec.minReplicas).toBeGreaterThan(1);
    expect(hpa.spec.maxReplicas).toBeGreaterThanOrEqual(hpa.spec.minReplicas);
    // Utilization targets need requests to compute against.
    expect(container.resources.requests).toHaveProperty('cpu');
    expect(container.resources.requests).toHaveProperty('memory');
  });

  it('probes liveness and startup at /health/live and readiness at /health/ready, on the serving port', () => {
    const port = container.ports[0] as { name: string; containerPort: number };
    expect(port.containerPort).toBe(Number(configMap.data.BASTION_PORT));
    const probes = { startup: container.startupProbe, liveness: container.livenessProbe };
    for (const probe of Object.values(probes)) expect(probe?.httpGet?.path).toBe('/health/live');
    expect(container.readinessProbe?.httpGet?.path).toBe('/health/ready');
    for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
      expect([port.name, port.containerPort]).toContain(probe?.httpGet?.port);
    }
    const startup = container.startupProbe as Required<Probe>;
    expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(30);
  });

  it('requests and limits CPU and memory (1 GiB, as the memory alert assumes)', () => {
    for (const kind of ['requests', 'limits'] as const) {
      expect(container.resources[kind]).toHaveProperty('cpu');
      expect(container.resources[kind]).toHaveProperty('memory');
    }
    expect(container.resources.limits?.memory).toBe('1Gi');
  });

  it('runs as user and group 10001, non-root, read-only, without privileges, capabilities or syscalls beyond the default', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).not.toHaveProperty('capabilities.add');
    expect(pod).toMatchObject({ automountServiceAccountToken: false });
    expect(one('Namespace').metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('turns off service links: Kubernetes would inject BASTION_SERVICE_HOST and Bastion refuses unknown variables', () => {
    const service = one('Service');
    // A Service named "bastion" becomes BASTION_SERVICE_HOST, BASTION_PORT=tcp://..., and more.
    expect(`${service.metadata.name.toUpperCase().replace(/-/g, '_')}_SERVICE_HOST` in ENV_KEYS).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
  });

  it('spreads the pods over nodes', () => {
    const constraints = pod.topologySpreadConstraints ?? [];
    expect(constraints.length).toBeGreaterThan(0);
    for (const constraint of constraints) expect(selects(constraint.labelSelector.matchLabels)).toBe(true);
  });

  it('takes its environment from the ConfigMap and the Secret, and names each pod its own audit file', () => {
    expect(container.envFrom).toEqual(
      expect.arrayContaining([
        { configMapRef: { name: configMap.metadata.name } },
        { secretRef: { name: 'bastion-secrets' } },
      ]),
    );
    expect(secrets.map((s) => s.metadata.name)).toContain('bastion-secrets');
    const podName = container.env.find((e) => e.name === 'POD_NAME');
    expect(podName?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    // $(POD_NAME) expands only when POD_NAME is defined before it.
    const names = container.env.map((e) => e.name);
    expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('BASTION_AUDIT_FILE'));
    const audit = envOf().BASTION_AUDIT_FILE as string;
    expect(audit).toBe(`${mountOf('audit')?.mountPath}/$(POD_NAME).jsonl`);
  });

  it('mounts a shared ReadWriteMany workspace and audit volume, the keys Secret read-only, and /data', () => {
    const claims = rendered.filter((doc) => doc.kind === 'PersistentVolumeClaim') as Array<
      Manifest & { spec: { accessModes: string[] } }
    >;
    const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
    for (const name of ['workspace', 'audit']) {
      const claim = claims.find((c) => c.metadata.name === volumes[name]?.persistentVolumeClaim?.claimName);
      expect(claim?.spec.accessModes).toEqual(['ReadWriteMany']);
    }
    expect(mountOf('workspace')?.mountPath).toBe(configMap.data.BASTION_WORKSPACE);
    expect(mountOf('data')?.mountPath).toBe(configMap.data.BASTION_DATA_DIR);
    expect(volumes.data?.emptyDir).toBeDefined();
    const keys = volumes.keys?.secret;
    expect(secrets.map((s) => s.metadata.name)).toContain(keys?.secretName);
    expect(keys?.defaultMode).toBe(0o440);
    expect(mountOf('keys')?.readOnly).toBe(true);
    const keysFile = configMap.data.BASTION_KEYS_FILE as string;
    expect(path.posix.dirname(keysFile)).toBe(mountOf('keys')?.mountPath);
    const keysSecret = secrets.find((s) => s.metadata.name === keys?.secretName);
    // The example's keys file is one Bastion reads (with no keys in it).
    const example = keysSecret?.stringData[path.posix.basename(keysFile)] as string;
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'bastion-keys-'));
    try {
      writeFileSync(path.join(scratch, 'keys.json'), example);
      expect(new KeyStore(path.join(scratch, 'keys.json')).list()).toEqual([]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    // Every mount has its volume.
    for (const mount of container.volumeMounts) expect(volumes).toHaveProperty(mount.name);
  });

  it('drains before it is killed: preStop pause, then the shutdown grace, inside the termination grace', () => {
    const command = container.lifecycle?.preStop?.exec?.command ?? [];
    expect(command[0]).toBe('sleep');
    const pauseMs = Number(command[1]) * 1000;
    expect(pauseMs).toBeGreaterThan(0);
    const config = podConfig();
    // Bastion's own backstop exits 5 s after the grace period.
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      pauseMs + config.server.shutdownGraceMs + 5_000,
    );
  });
});

describe('NetworkPolicy', () => {
  const policy = one('NetworkPolicy') as Manifest & {
    spec: {
      policyTypes: string[];
      ingress: Array<{
        from: Array<{ namespaceSelector?: { matchLabels: Labels }; podSelector?: { matchLabels: Labels } }>;
        ports: Array<{ port: number; protocol: string }>;
      }>;
      egress: Array<{ ports: Array<{ port: number; protocol: string }> }>;
    };
  };

  it('admits only the ingress controller and Prometheus, on the serving port', () => {
    expect(policy.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(policy.spec.ingress).toHaveLength(1);
    const rule = policy.spec.ingress[0] as (typeof policy.spec.ingress)[number];
    expect(rule.ports).toEqual([
      { protocol: 'TCP', port: (container.ports[0] as { containerPort: number }).containerPort },
    ]);
    const namespaces = rule.from.map((f) => f.namespaceSelector?.matchLabels['kubernetes.io/metadata.name']);
    expect(namespaces.sort()).toEqual(['ingress-nginx', 'monitoring']);
    const prometheus = rule.from.find((f) => f.podSelector);
    expect(prometheus?.podSelector?.matchLabels['app.kubernetes.io/name']).toBe('prometheus');
  });

  it('lets the pods reach DNS, Redis and HTTPS, nothing else', () => {
    const ports = policy.spec.egress.flatMap((rule) => rule.ports.map((p) => `${p.protocol}/${p.port}`));
    expect(ports.sort()).toEqual(['TCP/443', 'TCP/53', 'TCP/6379', 'UDP/53'].sort());
  });
});

describe('Environment of the pods', () => {
  it('names only variables Bastion knows (an unknown BASTION_* stops it at start)', () => {
    const known = new Set([...Object.keys(ENV_KEYS), ...LOADER_ENV]);
    const commented = readFileSync(path.join(DIR, 'secret.example.yaml'), 'utf8').matchAll(
      /#\s*([A-Z][A-Z0-9_]*):/g,
    );
    const names = [...Object.keys(podEnv), ...[...commented].map((m) => m[1] as string)];
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) {
      if (name.startsWith('BASTION_'))
        expect({ name, known: known.has(name) }).toEqual({ name, known: true });
      else
        expect({ name, known: name in STANDARD_ENV_KEYS || name === 'POD_NAME' }).toEqual({
          name,
          known: true,
        });
    }
  });

  it('is a configuration Bastion accepts, with Redis, API keys and a trusted proxy', () => {
    const config = podConfig();
    expect(config).toMatchObject({
      server: { host: '0.0.0.0', trustProxy: 1 },
      auth: { mode: 'api-key', keysFile: '/etc/bastion/keys/keys.json' },
      conversations: { store: 'redis' },
      rateLimit: { storage: 'redis' },
      audit: { file: '/audit/bastion-0.jsonl' },
    });
    expect(config.redis.url).toMatch(/^rediss:\/\//);
  });

  it('keeps secrets out of the ConfigMap', () => {
    for (const name of Object.keys(configMap.data)) {
      expect(name).not.toMatch(/TOKEN|PASSWORD|SECRET|API_KEY|REDIS_URL/);
    }
  });
});
