/** How the CLI reads input files: one JSON document, or NDJSON (one document per line). */

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
 */
export function documentsOf(file: string, text: string): FileDocument[] {
  const ndjson = /\.(nd)?jsonl?$/i.test(file) && !/\.json$/i.test(file);
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const looksNd = lines.length > 1 && lines.every((l) => /^\s*[[{]/.test(l) && /[\]}]\s*$/.test(l));
  if (ndjson || (looksNd && !isWholeJson(text))) return lines.map((l, i) => ({ label: `${file}:${i + 1}`, text: l }));
  return [{ label: file, text }];
}
