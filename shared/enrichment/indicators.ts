/**
 * Local threat-indicator lists (the SOC's global blacklist): CSV, JSON or a STIX 2.1
 * bundle, loaded once at start into an in-memory IndicatorSet keyed by canonical
 * entity key. A bad row fails the start naming file and line: a silently ignored
 * indicator is a missed detection.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { canonicalIp } from '../config/networks';
import { ConfigError } from '../errors';
import type { IndicatorHit, IndicatorSet } from '../triage/indicators';

/** An IndicatorSet that also knows its size. */
export interface LoadedIndicators extends IndicatorSet {
  readonly size: number;
}

const HASH_LENGTHS: Readonly<Record<string, number>> = { md5: 32, sha1: 40, sha256: 64 };

const rowSchema = z.object({
  type: z.string().min(1),
  value: z.string().min(1),
  source: z.string().default('indicator-file'),
  category: z.string().optional(),
  confidence: z.coerce.number().min(0).max(100).optional(),
  description: z.string().optional(),
});

/** The canonical entity key of an indicator, or undefined when the value is not valid for its type. */
export function indicatorKey(type: string, value: string): string | undefined {
  const t = type.trim().toLowerCase();
  const v = value.trim();
  if (t === 'ip' || t === 'ipv4' || t === 'ipv6' || t === 'ipv4-addr' || t === 'ipv6-addr') {
    const ip = canonicalIp(v);
    return ip ? `ip:${ip}` : undefined;
  }
  if (t === 'domain' || t === 'domain-name' || t === 'fqdn')
    return /^[a-z0-9_.-]+$/i.test(v) ? `domain:${v.toLowerCase().replace(/\.$/, '')}` : undefined;
  if (t === 'url') return `url:${v}`;
  const algo = t.replace(/[^a-z0-9]/g, '');
  // Own keys only: type "constructor" must be an unknown type, not Object.prototype.constructor.
  const len = Object.hasOwn(HASH_LENGTHS, algo) ? HASH_LENGTHS[algo] : undefined;
  if (len !== undefined) return new RegExp(`^[0-9a-f]{${len}}$`, 'i').test(v) ? `filehash:${algo}:${v.toLowerCase()}` : undefined;
  return undefined;
}

function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function rowsOfCsv(text: string): { line: number; row: Record<string, string> }[] {
  const lines = text.split(/\r?\n/);
  const header = splitCsvLine(lines[0] ?? '').map((h) => h.trim());
  const out: { line: number; row: Record<string, string> }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.trim() === '' || l.startsWith('#')) continue;
    const cells = splitCsvLine(l);
    const row: Record<string, string> = {};
    header.forEach((h, j) => {
      const c = cells[j];
      if (c !== undefined && c !== '') row[h] = c;
    });
    out.push({ line: i + 1, row });
  }
  return out;
}

const STIX_PATTERN = /^\[\s*(ipv4-addr|ipv6-addr|domain-name|url|file:hashes\.'?(SHA-256|SHA-1|MD5)'?)(?::value)?\s*=\s*'([^']+)'\s*\]$/i;

function rowsOfJson(doc: unknown): { line: number; row: Record<string, unknown> }[] {
  if (Array.isArray(doc)) return doc.map((r, i) => ({ line: i + 1, row: r as Record<string, unknown> }));
  const bundle = doc as { type?: unknown; objects?: unknown };
  if (bundle && bundle.type === 'bundle' && Array.isArray(bundle.objects)) {
    const out: { line: number; row: Record<string, unknown> }[] = [];
    bundle.objects.forEach(
      (o: { type?: string; pattern?: string; name?: string; confidence?: number; description?: string }, i: number) => {
        if (o.type !== 'indicator' || typeof o.pattern !== 'string') return;
        const m = STIX_PATTERN.exec(o.pattern.trim());
        if (!m) return; // complex STIX patterns are not single-value indicators
        const kind = m[2] ? m[2].replace('-', '').toLowerCase() : (m[1] ?? '');
        out.push({
          line: i + 1,
          row: { type: kind, value: m[3], source: 'stix', category: o.name, confidence: o.confidence, description: o.description },
        });
      },
    );
    return out;
  }
  throw new ConfigError('INDICATOR_FILES', 'a JSON indicator file must be an array of {type, value, …} or a STIX 2.1 bundle');
}

/** Loads indicator files into one set; a missing file is an error unless it is the optional default. */
export function loadIndicatorFiles(files: readonly string[], options?: { optional?: readonly string[] }): LoadedIndicators {
  const byKey = new Map<string, IndicatorHit>();
  for (const file of files) {
    if (!existsSync(file)) {
      if (options?.optional?.includes(file) ?? file === './indicators/soc-global.csv') continue;
      throw new ConfigError('INDICATOR_FILES', `${file} does not exist`);
    }
    const text = readFileSync(file, 'utf8');
    const rows = /\.json$/i.test(file) ? rowsOfJson(JSON.parse(text)) : rowsOfCsv(text);
    for (const { line, row } of rows) {
      const parsed = rowSchema.safeParse(row);
      if (!parsed.success) throw new ConfigError('INDICATOR_FILES', `${file}:${line}: ${parsed.error.issues[0]?.message ?? 'invalid row'}`);
      const r = parsed.data;
      const key = indicatorKey(r.type, r.value);
      if (!key) throw new ConfigError('INDICATOR_FILES', `${file}:${line}: "${r.value}" is not a valid ${r.type} indicator`);
      byKey.set(key, {
        key,
        source: r.source,
        ...(r.category ? { category: r.category } : {}),
        ...(r.confidence !== undefined ? { confidence: r.confidence } : {}),
        ...(r.description ? { description: r.description } : {}),
      });
    }
  }
  return { size: byKey.size, lookup: (k) => byKey.get(k.toLowerCase()) ?? byKey.get(k) };
}
