/**
 * Reads docker/docker-compose.yml, its env file and the Dockerfile the way Compose and Docker
 * would, for tests that have no Docker engine: YAML with merge keys (`<<: *anchor`), `${VAR}`,
 * `${VAR:-default}` and `${VAR-default}` substituted from the env file, each service's effective
 * environment (the image's ENV, then env_file, then environment: later wins), its hostname,
 * volumes, healthcheck and profiles.
 *
 * Owns parsing only. Must never read the caller's environment (the env file given is the only
 * source of substitutions, so a stray CONCORD_* variable cannot change what a test checks).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../harness.js';

export const DOCKER_DIR = path.join(REPO_ROOT, 'docker');
export const COMPOSE_FILE = path.join(DOCKER_DIR, 'docker-compose.yml');
export const ENV_EXAMPLE = path.join(DOCKER_DIR, '.env.example');
export const DOCKERFILE = path.join(DOCKER_DIR, 'Dockerfile');

/** KEY=VALUE lines of an env file (Compose's format: `#` comments, no quotes needed). */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`env file line is not KEY=VALUE: ${line}`);
    out.set(line.slice(0, eq).trim(), line.slice(eq + 1));
  }
  return out;
}

/** Compose's interpolation: ${VAR}, ${VAR:-default} (unset or empty), ${VAR-default} (unset), $$. */
export function interpolate(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (...m) => {
      const [whole, braced, op, fallback, bare] = m as [string, string?, string?, string?, string?];
      if (whole === '$$') return '$';
      const name = braced ?? bare!;
      const value = vars.get(name);
      if (op === ':-') return value === undefined || value === '' ? (fallback ?? '') : value;
      if (op === '-') return value === undefined ? (fallback ?? '') : value;
      return value ?? '';
    },
  );
}

function interpolateDeep(value: unknown, vars: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') return interpolate(value, vars);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, vars));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, vars)]));
  }
  return value;
}

/** `ENV A=1 B=2` (with line continuations) of the Dockerfile's last stage, in order. */
export function dockerfileEnv(text: string): Map<string, string> {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const stages = joined.split(/^FROM\s.*$/m);
  const last = stages[stages.length - 1] ?? '';
  const env = new Map<string, string>();
  for (const line of last.split('\n')) {
    const match = /^\s*ENV\s+(.*)$/.exec(line);
    if (match === null) continue;
    for (const pair of match[1]!.trim().split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  return env;
}

export interface ComposeService {
  readonly name: string;
  readonly hostname: string;
  /** The effective environment: image ENV, then env_file, then `environment`. */
  readonly environment: ReadonlyMap<string, string>;
  /** `volume:/target` mounts. */
  readonly volumes: readonly { source: string; target: string }[];
  readonly profiles: readonly string[];
  readonly restart: string | undefined;
  readonly healthcheck: { test: string[]; interval?: string } | undefined;
  readonly raw: Record<string, unknown>;
}

export interface ComposeProject {
  readonly services: readonly ComposeService[];
  readonly volumes: readonly string[];
  readonly raw: Record<string, unknown>;
}

/**
 * Loads the compose file with `envFile` as the only source of substitutions and env_file
 * contents (env_file paths inside the compose file are ignored in favour of it, as the tests
 * pass CONCORD_ENV_FILE=<envFile> to docker-compose too).
 */
export function loadCompose(
  envFile: string = ENV_EXAMPLE,
  composeFile: string = COMPOSE_FILE,
): ComposeProject {
  const envFromFile = parseEnvFile(readFileSync(envFile, 'utf8'));
  const vars = new Map(envFromFile);
  const doc = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as Record<string, unknown>;
  const raw = interpolateDeep(doc, vars) as Record<string, unknown>;
  const imageEnv = dockerfileEnv(readFileSync(DOCKERFILE, 'utf8'));
  const services: ComposeService[] = [];
  for (const [name, value] of Object.entries(
    (raw.services ?? {}) as Record<string, Record<string, unknown>>,
  )) {
    const environment = new Map(imageEnv);
    if (value.env_file !== undefined) for (const [k, v] of envFromFile) environment.set(k, v);
    const declared = value.environment;
    if (Array.isArray(declared)) {
      for (const item of declared as string[]) {
        const eq = item.indexOf('=');
        environment.set(item.slice(0, eq), item.slice(eq + 1));
      }
    } else if (declared !== undefined && declared !== null) {
      for (const [k, v] of Object.entries(declared as Record<string, unknown>)) environment.set(k, String(v));
    }
    const volumes = ((value.volumes ?? []) as string[]).map((v) => {
      const [source, target] = v.split(':') as [string, string];
      return { source, target };
    });
    const hc = value.healthcheck as { test: string[]; interval?: string } | undefined;
    services.push({
      name,
      hostname: typeof value.hostname === 'string' ? value.hostname : name,
      environment,
      volumes,
      profiles: (value.profiles ?? []) as string[],
      restart: value.restart as string | undefined,
      healthcheck: hc,
      raw: value,
    });
  }
  return { services, volumes: Object.keys(raw.volumes ?? {}), raw };
}

/** The last stage's `WORKDIR`-independent command: ENTRYPOINT + CMD (exec forms only). */
export function dockerfileCommand(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const stages = joined.split(/^FROM\s.*$/m);
  const last = stages[stages.length - 1] ?? '';
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const line of last.split('\n')) {
    const e = /^\s*ENTRYPOINT\s+(\[.*\])\s*$/.exec(line);
    if (e !== null) entrypoint = JSON.parse(e[1]!) as string[];
    const c = /^\s*CMD\s+(\[.*\])\s*$/.exec(line);
    if (c !== null) cmd = JSON.parse(c[1]!) as string[];
  }
  return [...entrypoint, ...cmd];
}
