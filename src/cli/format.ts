// Text for a verb's result that has no formatter of its own (`info`, `agent status`):
// one `key: value` line per field, nested objects indented, lists of scalars on one line,
// a list of objects one line per item.
export function formatObject(value: unknown, indent = ""): string {
  if (value === null || typeof value !== "object") return `${indent}${String(value)}`;
  const lines: string[] = [];
  const scalar = (v: unknown) => v === null || typeof v !== "object";
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (scalar(v)) lines.push(`${indent}${k}: ${String(v)}`);
    else if (Array.isArray(v) && v.every(scalar)) lines.push(`${indent}${k}: ${v.join(" ")}`);
    else if (Array.isArray(v)) {
      lines.push(`${indent}${k}: ${v.length}`);
      for (const item of v) lines.push(`${indent}  ${oneLine(item)}`);
    } else lines.push(`${indent}${k}:`, formatObject(v, `${indent}  `));
  }
  return lines.join("\n");
}

function oneLine(item: unknown): string {
  if (item === null || typeof item !== "object") return String(item);
  return Object.entries(item)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
    .join(", ");
}
