/**
 * The deployment files, checked without a container engine:
 * - docker/docker-compose.yml passes Debian's docker-compose 1.29 `config -q` (semantics) and
 *   dclint (the current compose-spec JSON schema plus lint rules), and a broken copy fails both;
 * - what the compose file means: three default nodes with hostnames, a named volume each, a
 *   restart policy, a health check, the cluster secret from the env file, one bootstrap list;
 * - docker/.env.example documents exactly the server's CONCORD_* settings (`--help`), so the
 *   two never drift;
 * - docker/Dockerfile: multi-stage, production dependencies only in the last stage, non-root,
 *   /data volume, the three ports the server defaults to, SIGTERM, HEALTHCHECK;
 * - docker/k8s/*.yaml validate against the Kubernetes OpenAPI schemas (kubernetes-models) and
 *   agree with each other (selectors, service name, ports, bootstrap names).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { HTTP_PORT_OFFSET, PEER_PORT_OFFSET } from '../../server/config.js';
import { CONCORD_MAIN, REPO_ROOT } from '../harness.js';
import { COMPOSE_FILE, DOCKERFILE, DOCKER_DIR, ENV_EXAMPLE, loadCompose, parseEnvFile } from './compose.js';

const run = promisify(execFile);
const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const DCLINT = path.join(REPO_ROOT, 'node_modules', '.bin', 'dclint');
const DCLINT_CONFIG = path.join(DOCKER_DIR, '.dclintrc.json');
const K8S_DIR = path.join(DOCKER_DIR, 'k8s');

/** CONCORD_* names in .env.example that configure Compose itself, not the server. */
const COMPOSE_ONLY = ['CONCORD_IMAGE', 'CONCORD_ENV_FILE'];

async function exitOf(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  try {
    const { stdout, stderr } = await run(file, args, { ...options, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}

/** docker-compose 1.29 on a compose file, with .env.example as the env file. */
function compose129(file: string, args: string[]) {
  return exitOf(DOCKER_COMPOSE, ['-f', file, ...args], {
    cwd: path.dirname(file),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CONCORD_ENV_FILE: ENV_EXAMPLE },
  });
}

describe('deployment files (docker/)', function () {
  this.timeout(60_000);

  /** A copy of the compose file beside the real one's relative paths, with `edit` applied. */
  function brokenCopy(edit: (text: string) => string): string {
    const file = path.join(DOCKER_DIR, `.docker-compose.broken-${process.pid}.yml`);
    writeFileSync(file, edit(readFileSync(COMPOSE_FILE, 'utf8')));
    return file;
  }

  describe('docker-compose.yml', () => {
    it('passes docker-compose 1.29 config -q, with and without the five-node profile', async function () {
      const probe = await exitOf(DOCKER_COMPOSE, ['version', '--short']);
      if (probe.code !== 0) {
        // pretest (scripts/ensure-test-deps.mjs) installs it as root; CI is root.
        this.skip();
      }
      expect(probe.stdout).to.match(/^1\./);
      const plain = await compose129(COMPOSE_FILE, ['config', '-q']);
      expect(plain.code, plain.stderr).to.equal(0);
      const five = await compose129(COMPOSE_FILE, ['--profile', 'five', 'config', '--services']);
      expect(five.code, five.stderr).to.equal(0);
      expect(five.stdout.trim().split('\n').sort()).to.deep.equal([
        'concord1',
        'concord2',
        'concord3',
        'concord4',
        'concord5',
      ]);
      // (1.29 lists profiled services in --services whatever the profile; loadCompose checks profiles.)
    });

    it('passes dclint (compose-spec schema + lint rules) with zero warnings', async () => {
      const r = await exitOf(process.execPath, [
        DCLINT,
        '-c',
        DCLINT_CONFIG,
        '--max-warnings',
        '0',
        COMPOSE_FILE,
      ]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
    });

    it('a broken compose file fails both validators', async function () {
      const misspelt = brokenCopy((t) => t.replace('    hostname: concord2\n', '    hostnme: concord2\n'));
      try {
        const lint = await exitOf(process.execPath, [DCLINT, '-c', DCLINT_CONFIG, misspelt]);
        expect(lint.code).to.not.equal(0);
        expect(lint.stdout).to.include('invalid-schema');
        const probe = await exitOf(DOCKER_COMPOSE, ['version', '--short']);
        if (probe.code !== 0) this.skip();
        const semantic = await compose129(misspelt, ['config', '-q']);
        expect(semantic.code).to.not.equal(0);
        expect(semantic.stderr).to.match(/hostnme/);
      } finally {
        rmSync(misspelt, { force: true });
      }
    });

    it('describes three nodes: hostnames, one named volume each, restart, health check, secret from the env file', () => {
      const project = loadCompose(ENV_EXAMPLE);
      const defaults = project.services.filter((s) => s.profiles.length === 0);
      expect(defaults.map((s) => s.name)).to.deep.equal(['concord1', 'concord2', 'concord3']);
      const env = parseEnvFile(readFileSync(ENV_EXAMPLE, 'utf8'));
      const bootstrap = new Set<string>();
      const volumes = new Set<string>();
      for (const s of project.services) {
        expect(s.hostname, s.name).to.equal(s.name);
        expect(s.restart, s.name).to.equal('unless-stopped');
        expect(s.healthcheck?.test, s.name).to.include('/readyz');
        expect(s.volumes, s.name).to.have.length(1);
        expect(s.volumes[0]!.target).to.equal(s.environment.get('CONCORD_DATA_DIR'));
        expect(project.volumes).to.include(s.volumes[0]!.source);
        volumes.add(s.volumes[0]!.source);
        expect(s.environment.get('CONCORD_CLUSTER_SECRET'), s.name).to.equal(
          env.get('CONCORD_CLUSTER_SECRET'),
        );
        expect(s.environment.get('CONCORD_BIND')).to.equal('0.0.0.0');
        const id = s.environment.get('CONCORD_NODE_ID');
        expect(id, s.name).to.match(/^n\d$/);
        if (s.profiles.length === 0) {
          bootstrap.add(s.environment.get('CONCORD_BOOTSTRAP')!);
          expect(s.environment.get('CONCORD_BOOTSTRAP')).to.include(`${id}=${s.hostname}:`);
          expect(s.environment.has('CONCORD_JOIN')).to.equal(false);
        } else {
          expect(s.profiles).to.deep.equal(['five']);
          expect(s.environment.get('CONCORD_JOIN')).to.equal('yes');
          expect(s.environment.has('CONCORD_BOOTSTRAP')).to.equal(false);
        }
      }
      expect(volumes.size).to.equal(project.services.length);
      // Every founding node gets the same list, naming exactly the three default services.
      expect([...bootstrap]).to.deep.equal(['n1=concord1:6379,n2=concord2:6379,n3=concord3:6379']);
    });
  });

  it('.env.example documents exactly the CONCORD_* settings `concord server --help` lists', async () => {
    const help = await exitOf(process.execPath, [CONCORD_MAIN, 'server', '--help']);
    expect(help.code).to.equal(0);
    const fromHelp = new Set(help.stdout.match(/CONCORD_[A-Z_]+/g) ?? []);
    expect(fromHelp.size).to.be.at.least(20);
    const text = readFileSync(ENV_EXAMPLE, 'utf8');
    // Set or shown commented out, each on its own line: `NAME=` or `# NAME=`.
    const documented = new Set([...text.matchAll(/^#? ?(CONCORD_[A-Z_]+)=/gm)].map((m) => m[1]!));
    const missing = [...fromHelp].filter((n) => !documented.has(n));
    const unknown = [...documented].filter((n) => !fromHelp.has(n) && !COMPOSE_ONLY.includes(n));
    expect(missing, 'settings missing from .env.example').to.deep.equal([]);
    expect(unknown, 'names in .env.example the server does not read').to.deep.equal([]);
  });

  it('Dockerfile: multi-stage, production deps only at runtime, non-root, volume, ports, SIGTERM, HEALTHCHECK', () => {
    const text = readFileSync(DOCKERFILE, 'utf8').replace(/\\\r?\n/g, ' ');
    const lines = text.split('\n').filter((l) => !/^\s*(#|$)/.test(l));
    const stages = lines.filter((l) => /^FROM\s/.test(l));
    expect(stages).to.have.length(2);
    expect(stages[0]).to.match(/ AS build$/);
    const runtime = lines.slice(lines.indexOf(stages[1]!));
    const build = lines.slice(0, lines.indexOf(stages[1]!));
    expect(
      build.some((l) => /npm ci(?!.*--omit=dev)/.test(l)),
      'dev deps in the build stage',
    ).to.equal(true);
    expect(build.some((l) => /npm run build/.test(l))).to.equal(true);
    expect(
      runtime.some((l) => /npm ci .*--omit=dev/.test(l)),
      'production deps only',
    ).to.equal(true);
    expect(runtime.some((l) => /COPY --from=build .*dist\/server/.test(l))).to.equal(true);
    const user = runtime.filter((l) => /^USER\s/.test(l)).pop();
    expect(user).to.match(/^USER\s+(?!root\b|0\b)\S+/);
    expect(runtime.some((l) => /^VOLUME\s+\["?\/data"?\]/.test(l))).to.equal(true);
    const exposed = runtime
      .filter((l) => /^EXPOSE\s/.test(l))
      .flatMap((l) =>
        l
          .replace(/^EXPOSE\s+/, '')
          .trim()
          .split(/\s+/),
      )
      .map(Number);
    const port = Number(/CONCORD_PORT=(\d+)/.exec(runtime.join('\n'))?.[1]);
    expect(exposed.sort()).to.deep.equal([port, port + HTTP_PORT_OFFSET, port + PEER_PORT_OFFSET].sort());
    expect(runtime.some((l) => /^STOPSIGNAL\s+SIGTERM/.test(l))).to.equal(true);
    expect(runtime.some((l) => /^HEALTHCHECK .*CMD .*healthcheck\.mjs.*\/healthz/.test(l))).to.equal(true);
    // Exec form: node is PID 1 and gets SIGTERM itself.
    expect(runtime.some((l) => /^ENTRYPOINT \["node",/.test(l))).to.equal(true);
  });

  describe('Kubernetes manifests (docker/k8s)', () => {
    interface Doc {
      apiVersion: string;
      kind: string;
      metadata: { name: string };
      spec: Record<string, unknown>;
    }
    function docs(): Doc[] {
      const out: Doc[] = [];
      for (const file of ['statefulset.yaml', 'service.yaml', 'pdb.yaml']) {
        for (const d of parseAllDocuments(readFileSync(path.join(K8S_DIR, file), 'utf8'))) {
          expect(d.errors, file).to.deep.equal([]);
          out.push(d.toJS() as Doc);
        }
      }
      return out;
    }

    /** Validates against the OpenAPI schema of its kind; throws with the schema error. */
    async function validate(doc: Doc): Promise<void> {
      switch (`${doc.apiVersion}/${doc.kind}`) {
        case 'apps/v1/StatefulSet': {
          const { StatefulSet } = await import('kubernetes-models/apps/v1/StatefulSet');
          new StatefulSet(doc as never).validate();
          return;
        }
        case 'v1/Service': {
          const { Service } = await import('kubernetes-models/v1/Service');
          new Service(doc).validate();
          return;
        }
        case 'policy/v1/PodDisruptionBudget': {
          const { PodDisruptionBudget } = await import('kubernetes-models/policy/v1/PodDisruptionBudget');
          new PodDisruptionBudget(doc).validate();
          return;
        }
        default:
          throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
      }
    }

    it('every document validates against the Kubernetes schema; a broken one does not', async () => {
      const all = docs();
      expect(all.map((d) => d.kind).sort()).to.deep.equal([
        'PodDisruptionBudget',
        'Service',
        'Service',
        'StatefulSet',
      ]);
      for (const d of all) await validate(d);
      const broken = structuredClone(all.find((d) => d.kind === 'StatefulSet')!);
      (broken.spec as { replicas: unknown }).replicas = 'three';
      let error: unknown = null;
      await validate(broken).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/replicas/);
    });

    it('the manifests agree: headless service, selectors, ports, bootstrap names, PDB keeps a majority', () => {
      const all = docs();
      const sts = all.find((d) => d.kind === 'StatefulSet')! as unknown as {
        metadata: { name: string };
        spec: {
          serviceName: string;
          replicas: number;
          podManagementPolicy: string;
          selector: { matchLabels: Record<string, string> };
          template: {
            metadata: { labels: Record<string, string> };
            spec: {
              containers: {
                env: { name: string; value?: string; valueFrom?: unknown }[];
                ports: { name: string; containerPort: number }[];
                readinessProbe: { httpGet: { path: string; port: string } };
                livenessProbe: { httpGet: { path: string; port: string } };
                volumeMounts: { name: string; mountPath: string }[];
              }[];
              securityContext: { runAsNonRoot: boolean };
            };
          };
        };
      };
      const headless = all.find((d) => d.kind === 'Service' && d.metadata.name === sts.spec.serviceName)!;
      expect(headless, 'the StatefulSet names its headless service').to.not.equal(undefined);
      expect(headless.spec.clusterIP).to.equal('None');
      expect(headless.spec.publishNotReadyAddresses).to.equal(true);
      expect(sts.spec.podManagementPolicy).to.equal('Parallel');
      expect(sts.spec.template.spec.securityContext.runAsNonRoot).to.equal(true);
      const labels = sts.spec.template.metadata.labels;
      for (const d of all) {
        const selector =
          (d.spec.selector as { matchLabels?: Record<string, string> } | Record<string, string>) ?? {};
        const wanted =
          'matchLabels' in selector ? selector.matchLabels : (selector as Record<string, string>);
        for (const [k, v] of Object.entries(wanted))
          expect(labels[k], `${d.kind} ${d.metadata.name} selector`).to.equal(v);
      }
      const container = sts.spec.template.spec.containers[0]!;
      const env = new Map(container.env.map((e) => [e.name, e.value]));
      const port = Number(env.get('CONCORD_PORT'));
      const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
      expect(ports).to.deep.equal({
        resp: port,
        peer: port + PEER_PORT_OFFSET,
        http: port + HTTP_PORT_OFFSET,
      });
      expect(container.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'http' });
      expect(container.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'http' });
      expect(container.volumeMounts.map((m) => m.mountPath)).to.include(env.get('CONCORD_DATA_DIR'));
      expect(container.env.find((e) => e.name === 'CONCORD_CLUSTER_SECRET')?.valueFrom).to.have.property(
        'secretKeyRef',
      );
      const name = sts.metadata.name;
      const expected = Array.from(
        { length: sts.spec.replicas },
        (_, i) => `${name}-${i}=${name}-${i}.${headless.metadata.name}:${port}`,
      ).join(',');
      expect(env.get('CONCORD_BOOTSTRAP')).to.equal(expected);
      const pdb = all.find((d) => d.kind === 'PodDisruptionBudget')!;
      expect(pdb.spec.minAvailable).to.equal(Math.floor(sts.spec.replicas / 2) + 1);
    });
  });
});
