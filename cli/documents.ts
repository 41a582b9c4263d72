/** How the CLI reads input files: one JSON document, or NDJSON (one document per line). */
import { readFileSync } from 'node:fs';

/** One document of a file, as text (the pipeline applies its own size limit and parsing). */
export interface FileDocument {
  /** `FILE` for a whole-file document, `FILE:LINE` for an NDJSON line. */
  readonly label: string;
  readonly text: string;
}

function isWholeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Splits a file into documents: NDJSON by extension (`.ndjson`, `.jsonl`), or when every line
 * is a JSON value and the whole text is not; otherwise the file is one JSON document.
 * An NDJSON label carries the line's real 1-based number in the file, blank lines included.
 * Returns no documents when the file is empty or holds only blank lines, whatever its extension,
 * so callers can report an empty file the same way for `.json` and `.ndjson`.
 */
export function documentsOf(file: string, text: string): FileDocument[] {
  if (text.trim() === '') return [];
  const ndjson = /\.(nd)?jsonl?$/i.test(file) && !/\.json$/i.test(file);
  // Number the lines before dropping blank ones: the label must point at the line an editor shows.
  const lines = text
    .split(/\r?\n/)
    .map((l, i) => ({ line: i + 1, text: l }))
    .filter((l) => l.text.trim() !== '');
  const looksNd = lines.length > 1 && lines.every((l) => /^\s*[[{]/.test(l.text) && /[\]}]\s*$/.test(l.text));
  if (ndjson || (looksNd && !isWholeJson(text))) return lines.map((l) => ({ label: `${file}:${l.line}`, text: l.text }));
  return [{ label: file, text }];
}

/** Every file's documents (see `readAllDocuments`), and how many files were empty or could not be read. */
export interface ReadFiles {
  readonly files: { readonly file: string; readonly docs: FileDocument[] }[];
  readonly empty: number;
  readonly unreadable: number;
}

/**
 * Reads every file's documents, in order. An empty file (no document, whatever its extension) is told
 * to `report` as `FILE: empty`: every command that takes input files refuses it the same way. A file
 * that cannot be read (missing, a directory, no permission) is a wrong command line, not a rejected
 * input: it is told as `FILE: cannot read: reason` and left out, and the others are still read, so one
 * run names every bad path. Each command decides what the counts mean for its exit code.
 */
export function readAllDocuments(files: readonly string[], report: (message: string) => void): ReadFiles {
  let empty = 0;
  let unreadable = 0;
  const read = files.flatMap((file) => {
    let docs: FileDocument[];
    try {
      docs = documentsOf(file, readFileSync(file, 'utf8'));
    } catch (e) {
      report(`${file}: cannot read: ${e instanceof Error ? e.message : String(e)}`);
      unreadable++;
      return [];
    }
    if (docs.length === 0) {
      report(`${file}: empty`);
      empty++;
    }
    return [{ file, docs }];
  });
  return { files: read, empty, unreadable };
}
