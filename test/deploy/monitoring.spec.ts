import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse } from 'yaml';
import { Metrics, METRIC_PREFIX } from '../../src/observability/metrics.js';

// Static checks of monitoring/: the alert rules and their runbooks and promtool tests, the metric names the
// alerts and the dashboard query against the series Bastion really registers, the Grafana dashboard and
// provisioning, and the Prometheus configs against the compose file and Kubernetes manifests they serve.
// promtool itself runs in scripts/check-prometheus.sh.

const MONITORING = path.resolve('monitoring');
const RUNBOOK_URL = 'https://github.com/bastion-mcp/bastion/blob/main/docs/runbooks.md#';

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface AlertTest {
  alertname: string;
  eval_time: string;
  exp_alerts?: unknown[];
}
interface Panel {
  id: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  authorization?: { type?: string; credentials_file?: string };
  static_configs?: { targets: string[] }[];
  kubernetes_sd_configs?: {
    role: string;
    namespaces?: { names: string[] };
    selectors?: { role: string; label?: string }[];
  }[];
  relabel_configs?: { source_labels?: string[]; regex?: string; action?: string; target_label?: string }[];
}
interface PrometheusConfig {
  rule_files: string[];
  scrape_configs: ScrapeConfig[];
}

function yamlFile<T>(file: string): T {
  return parse(readFileSync(file, 'utf8'), { merge: true }) as T;
}

const rules = yamlFile<{ groups: { name: string; rules: Rule[] }[] }>(
  path.join(MONITORING, 'prometheus/alerts.yml'),
).groups.flatMap((group) => group.rules);
const alerts = rules.filter((rule): rule is Rule & { alert: string } => rule.alert !== undefined);
const alertTests = yamlFile<{ rule_files: string[]; tests: { alert_rule_test?: AlertTest[] }[] }>(
  path.join(MONITORING, 'prometheus/alerts.test.yml'),
);
const dashboard = JSON.parse(
  readFileSync(path.join(MONITORING, 'grafana/dashboards/bastion.json'), 'utf8'),
) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid?: string } }[] };
};
const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
const rows = dashboard.panels.filter((panel) => panel.type === 'row');

/** GitHub's heading anchors: lowercase, punctuation other than `-` and `_` dropped, spaces to `-`. */
function githubAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = (heading[1] as string).replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** `bastion_*` names in PromQL (or prose): metric names never sit inside a label value here. */
function metricNames(text: string): string[] {
  return [...text.matchAll(/\bbastion_[a-z0-9_]+/g)].map((match) => match[0]);
}

/** Every series name Bastion exposes: its own metrics and prom-client's process defaults, with the prefix. */
async function exposedNames(): Promise<Set<string>> {
  const metrics = new Metrics();
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults, prefix: METRIC_PREFIX });
  const all = [...(await metrics.registry.getMetricsAsJSON()), ...(await defaults.getMetricsAsJSON())];
  const names = new Set<string>();
  for (const metric of all) {
    names.add(metric.name);
    const suffixes = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] }[
      String(metric.type)
    ];
    for (const suffix of suffixes ?? []) names.add(metric.name + suffix);
  }
  return names;
}

/** A memory size in bytes. Compose's units are binary (`1g` is 1 GiB); Kubernetes' are binary with an `i`
 * (`1Gi`) and decimal without (`1G`). */
function bytes(quantity: string, units: 'compose' | 'kubernetes'): number {
  const match = /^(\d+(?:\.\d+)?)([kKmMgGtT])?(i)?[bB]?$/.exec(quantity.trim());
  if (!match) throw new Error(`not a memory size: ${quantity}`);
  const power = ' kmgt'.indexOf((match[2] ?? ' ').toLowerCase());
  const base = units === 'compose' || match[3] ? 1024 : 1000;
  return Number(match[1]) * base ** power;
}

describe('alert rules', () => {
  const anchors = githubAnchors(readFileSync(path.resolve('docs/runbooks.md'), 'utf8'));

  it('define the alerts the runbooks and the dashboard are built around', () => {
    expect(alerts.map((rule) => rule.alert)).toEqual(
      expect.arrayContaining([
        'BastionHighErrorRate',
        'BastionHighLatency',
        'BastionInstanceDown',
        'BastionNotReady',
        'BastionRateLimitSurge',
        'BastionSandboxRefusalSurge',
        'BastionProviderCircuitOpen',
        'BastionHighMemory',
        'BastionUpstreamDown',
        'BastionUpstreamCircuitOpen',
      ]),
    );
    expect(new Set(alerts.map((rule) => rule.alert)).size).toBe(alerts.length);
  });

  it.each(alerts.map((rule) => [rule.alert, rule] as const))(
    '%s has a CamelCase name, a severity, a summary, a description and a runbook section',
    (name, rule) => {
      expect(name).toMatch(/^Bastion([A-Z][a-z0-9]*)+$/);
      expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary?.trim()).toBeTruthy();
      expect(rule.annotations?.description?.trim()).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? '';
      expect(url.startsWith(RUNBOOK_URL)).toBe(true);
      const anchor = url.slice(RUNBOOK_URL.length);
      // The section is headed by the alert's own name.
      expect(anchor).toBe(name.toLowerCase());
      expect(anchors).toContain(anchor);
    },
  );

  it('every alert has a promtool case where it fires and one where it must not', () => {
    const cases = alertTests.tests.flatMap((test) => test.alert_rule_test ?? []);
    const names = new Set(alerts.map((rule) => rule.alert));
    for (const testCase of cases) expect(names).toContain(testCase.alertname);
    for (const name of names) {
      const own = cases.filter((testCase) => testCase.alertname === name);
      expect({ name, fires: own.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({
        name,
        fires: true,
      });
      expect({ name, silent: own.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({
        name,
        silent: true,
      });
    }
    expect(alertTests.rule_files).toEqual(['alerts.yml']);
  });

  it('query only series Bastion exposes', async () => {
    const exposed = await exposedNames();
    // The registry itself: a metric renamed in src/ must fail here, not on a silent dashboard.
    expect(exposed).toContain('bastion_http_request_duration_seconds_bucket');
    expect(exposed).toContain('bastion_process_resident_memory_bytes');
    expect(exposed).toContain('bastion_ready');
    const used = rules.flatMap((rule) => metricNames(rule.expr));
    expect(used.length).toBeGreaterThanOrEqual(alerts.length);
    expect([...new Set(used)].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe('Grafana dashboard', () => {
  it('is the bastion dashboard on the prometheus data source, with an instance variable', () => {
    expect(dashboard.uid).toBe('bastion');
    expect(dashboard.schemaVersion).toBe(39);
    const instance = dashboard.templating.list.find((variable) => variable.name === 'instance');
    expect(instance?.type).toBe('query');
    expect(instance?.datasource?.uid).toBe('prometheus');
    expect(JSON.stringify(instance?.query)).toContain('label_values(');
  });

  it('has the traffic, latency, errors, agent, process and upstream rows', () => {
    expect(rows.map((row) => row.title)).toEqual([
      'Traffic',
      'Latency',
      'Errors',
      'Agent',
      'Process',
      'Upstream MCP servers',
    ]);
  });

  it('never sums the gauges /metrics already sums over workers, and shows their states as 0 or 1', () => {
    // With `serve --workers N` each of these counts workers: a sum over instances reads 2 for one state,
    // and a state timeline maps only 0 and 1.
    const workerCounts =
      /\bbastion_(upstream_up|upstream_circuit_open|upstream_tools|provider_circuit_open)\b/;
    const counted = panels.filter((panel) =>
      (panel.targets ?? []).some((target) => workerCounts.test(target.expr ?? '')),
    );
    expect(counted.map((panel) => panel.title)).toEqual(
      expect.arrayContaining([
        'Provider circuit',
        'Upstreams up',
        'Upstream circuit',
        'Upstream tools offered',
      ]),
    );
    for (const panel of counted)
      for (const target of panel.targets ?? []) {
        expect(target.expr).not.toMatch(/\bsum\b/);
        if (panel.type === 'state-timeline')
          expect(target.expr).toMatch(/^(max|min) by \([a-z]+\) \(.*\) > bool 0$/);
      }
  });

  it.each(panels.map((panel) => [panel.title ?? `panel ${panel.id}`, panel] as const))(
    '%s has a title, the prometheus data source and queries filtered by instance',
    (_title, panel) => {
      expect(panel.title?.trim()).toBeTruthy();
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: 'prometheus' });
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.expr?.trim()).toBeTruthy();
        expect(target.datasource?.uid).toBe('prometheus');
        expect(target.expr).toContain('instance=~"$instance"');
      }
    },
  );

  it('has unique panel ids and panels that do not overlap', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { h, w, x, y } = panel.gridPos ?? { h: 0, w: 0, x: 0, y: 0 };
      expect(h * w).toBeGreaterThan(0);
      expect(x + w).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++)
        for (let column = x; column < x + w; column++) {
          const cell = `${row}:${column}`;
          expect({ panel: panel.title, cell, taken: cells.has(cell) }).toEqual({
            panel: panel.title,
            cell,
            taken: false,
          });
          cells.add(cell);
        }
    }
  });

  it('queries only series Bastion exposes, and every series its rows are about', async () => {
    const exposed = await exposedNames();
    const exprs = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ''));
    const used = new Set([
      ...exprs.flatMap(metricNames),
      ...dashboard.templating.list.flatMap((variable) => metricNames(JSON.stringify(variable.query))),
    ]);
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
    for (const name of [
      'bastion_http_request_duration_seconds_count',
      'bastion_http_request_duration_seconds_bucket',
      'bastion_mcp_requests_total',
      'bastion_tool_duration_seconds_bucket',
      'bastion_tool_calls_total',
      'bastion_auth_failures_total',
      'bastion_rate_limited_total',
      'bastion_sandbox_refusals_total',
      'bastion_agent_turns_total',
      'bastion_agent_turn_duration_seconds_bucket',
      'bastion_agent_tokens_total',
      'bastion_agent_steps_total',
      'bastion_model_retries_total',
      'bastion_provider_circuit_open',
      'bastion_process_resident_memory_bytes',
      'bastion_nodejs_heap_size_used_bytes',
      'bastion_nodejs_eventloop_lag_p99_seconds',
      'bastion_in_flight_requests',
      'bastion_ready',
      'bastion_upstream_up',
      'bastion_upstream_circuit_open',
      'bastion_upstream_calls_total',
      'bastion_upstream_call_duration_seconds_bucket',
      'bastion_upstream_restarts_total',
      'bastion_upstream_tools',
    ])
      expect(used).toContain(name);
  });
});

describe('runbooks', () => {
  it('name only series Bastion exposes', async () => {
    const exposed = await exposedNames();
    const used = new Set(metricNames(readFileSync(path.resolve('docs/runbooks.md'), 'utf8')));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((name) => !exposed.has(name))).toEqual([]);
  });

  it('the upstreams guide names every upstream series Bastion exposes, and no other', async () => {
    const exposed = await exposedNames();
    const upstreamSeries = (names: Iterable<string>) =>
      [...names].filter((name) => name.startsWith('bastion_upstream_') && !/_(bucket|sum|count)$/.test(name));
    const named = new Set(metricNames(readFileSync(path.resolve('docs/upstreams.md'), 'utf8')));
    expect(upstreamSeries(exposed).length).toBeGreaterThanOrEqual(6);
    expect(upstreamSeries(named).sort()).toEqual(upstreamSeries(exposed).sort());
    expect([...named].filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe('deployment wiring', () => {
  const compose = yamlFile<{
    services: Record<
      string,
      {
        volumes?: string[];
        secrets?: { source: string; target: string }[];
        deploy?: { resources?: { limits?: { memory?: string } } };
      }
    >;
  }>(path.resolve('docker-compose.yml'));
  /** container path -> repository path, for one compose service's bind mounts. */
  const mounts = (service: string) =>
    new Map(
      (compose.services[service]?.volumes ?? [])
        .filter((volume) => volume.startsWith('./'))
        .map((volume) => {
          const [source, target] = volume.split(':') as [string, string];
          return [target.replace(/\/$/, ''), path.normalize(source.replace(/\/$/, ''))];
        }),
    );

  it('Grafana provisions the prometheus data source and the dashboards folder compose mounts', () => {
    const grafana = mounts('grafana');
    expect(grafana.get('/etc/grafana/provisioning')).toBe('monitoring/grafana/provisioning');
    expect(grafana.get('/var/lib/grafana/dashboards')).toBe('monitoring/grafana/dashboards');

    const datasources = yamlFile<{ datasources: { uid: string; type: string; url: string }[] }>(
      path.join(MONITORING, 'grafana/provisioning/datasources/prometheus.yml'),
    ).datasources;
    expect(datasources).toEqual([
      expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    expect(Object.keys(compose.services)).toContain('prometheus');

    const providers = yamlFile<{ providers: { type: string; options: { path: string } }[] }>(
      path.join(MONITORING, 'grafana/provisioning/dashboards/bastion.yml'),
    ).providers;
    expect(providers).toEqual([
      expect.objectContaining({
        type: 'file',
        options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }),
      }),
    ]);
  });

  it('Prometheus (compose) loads the mounted rules and scrapes both instances with the mounted token', () => {
    const config = yamlFile<PrometheusConfig>(path.join(MONITORING, 'prometheus/prometheus.yml'));
    const prometheus = mounts('prometheus');
    expect(prometheus.get('/etc/prometheus/prometheus.yml')).toBe('monitoring/prometheus/prometheus.yml');
    expect(prometheus.get('/etc/prometheus/alerts.yml')).toBe('monitoring/prometheus/alerts.yml');
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);

    const job = config.scrape_configs.find((scrape) => scrape.job_name === 'bastion');
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    expect(job?.authorization).toEqual({ type: 'Bearer', credentials_file: '/run/secrets/metrics_token' });
    expect(compose.services.prometheus?.secrets?.map((secret) => secret.target)).toContain(
      '/run/secrets/metrics_token',
    );
    const targets = job?.static_configs?.flatMap((group) => group.targets) ?? [];
    expect(targets).toEqual(['bastion-1:3000', 'bastion-2:3000']);
    for (const target of targets) expect(Object.keys(compose.services)).toContain(target.split(':')[0]);
  });

  it('Prometheus (Kubernetes) finds the pods the manifests label, on the port they declare', () => {
    const config = yamlFile<PrometheusConfig>(path.join(MONITORING, 'prometheus/prometheus.kubernetes.yml'));
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const job = config.scrape_configs.find((scrape) => scrape.job_name === 'bastion');
    expect(job?.authorization?.type).toBe('Bearer');
    expect(job?.authorization?.credentials_file).toMatch(/^\/.+/);

    const namespace = yamlFile<{ metadata: { name: string } }>(
      path.resolve('deploy/kubernetes/namespace.yaml'),
    );
    const deployment = yamlFile<{
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { ports?: { containerPort: number }[] }[] };
        };
      };
    }>(path.resolve('deploy/kubernetes/deployment.yaml'));
    const labels = deployment.spec.template.metadata.labels;
    const ports = deployment.spec.template.spec.containers
      .flatMap((c) => c.ports ?? [])
      .map((p) => p.containerPort);

    expect(job?.kubernetes_sd_configs).toEqual([
      expect.objectContaining({
        role: 'pod',
        namespaces: { names: [namespace.metadata.name] },
        selectors: [{ role: 'pod', label: 'app.kubernetes.io/name=bastion' }],
      }),
    ]);
    // The manifests get their namespace from the kustomization.
    const kustomization = yamlFile<{ namespace: string }>(
      path.resolve('deploy/kubernetes/kustomization.yaml'),
    );
    expect(kustomization.namespace).toBe(namespace.metadata.name);
    expect(labels['app.kubernetes.io/name']).toBe('bastion');

    const keepPort = job?.relabel_configs?.find(
      (relabel) =>
        relabel.action === 'keep' &&
        relabel.source_labels?.includes('__meta_kubernetes_pod_container_port_number'),
    );
    expect(ports).toContain(Number(keepPort?.regex));
    expect(job?.relabel_configs).toContainEqual(
      expect.objectContaining({ source_labels: ['__meta_kubernetes_pod_name'], target_label: 'instance' }),
    );
  });

  it('BastionHighMemory matches the memory limit compose and Kubernetes give each instance', () => {
    const expr = alerts.find((rule) => rule.alert === 'BastionHighMemory')?.expr ?? '';
    const match = /bastion_process_resident_memory_bytes\s*>\s*([\d.]+)((?:\s*\*\s*[\d.]+)*)\s*$/.exec(expr);
    expect(match).not.toBeNull();
    const [share, ...factors] = [match?.[1], ...(match?.[2] ?? '').split('*').slice(1)].map(Number);
    const limit = factors.reduce((product, factor) => product * factor, 1);
    expect(share).toBeGreaterThan(0.5);
    expect(share).toBeLessThan(1);

    for (const service of ['bastion-1', 'bastion-2'])
      expect(bytes(compose.services[service]?.deploy?.resources?.limits?.memory ?? '', 'compose')).toBe(
        limit,
      );
    const deployment = yamlFile<{
      spec: { template: { spec: { containers: { resources?: { limits?: { memory?: string } } }[] } } };
    }>(path.resolve('deploy/kubernetes/deployment.yaml'));
    const container = deployment.spec.template.spec.containers[0];
    expect(bytes(container?.resources?.limits?.memory ?? '', 'kubernetes')).toBe(limit);
  });
});
