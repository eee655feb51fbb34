// Writes a TypeScript module that types a Grafana dashboard JSON with Grafana's own schema
// (@grafana/schema: the dashboard model, and each panel's options and custom field config
// with its panel plugin's types), for `tsc --noEmit --strict` to check. Used by
// scripts/check-dashboard; not a checker of its own.
//
//   node dashboard-schema.mjs DASHBOARD.json SCHEMA_PACKAGE_DIR > check.ts
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [dashboardPath, schemaDir] = process.argv.slice(2);
if (!dashboardPath || !schemaDir) {
  console.error("usage: node dashboard-schema.mjs DASHBOARD.json SCHEMA_PACKAGE_DIR");
  process.exit(2);
}
const dashboard = JSON.parse(readFileSync(dashboardPath, "utf8"));
// The import format's keys (`__inputs`, `__requires`, `__elements`): Grafana's import reads
// and drops them; they are not part of the dashboard model.
const imported = Object.keys(dashboard).filter((k) => k.startsWith("__"));
for (const k of imported) delete dashboard[k];
const exportsMap = JSON.parse(readFileSync(join(schemaDir, "package.json"), "utf8")).exports;

// Every panel, those inside rows included.
function* panels(list) {
  for (const p of list ?? []) {
    yield p;
    yield* panels(p.panels);
  }
}

// The module of a panel plugin's option types (`timeseries` -> .../TimeSeriesPanelCfg_types.gen).
function panelModule(type) {
  const prefix = `./dist/esm/raw/composable/${type}/panelcfg/x/`;
  const key = Object.keys(exportsMap).find((k) => k.startsWith(prefix) && k.endsWith("PanelCfg_types.gen"));
  return key && "@grafana/schema" + key.slice(1);
}

const out = [];
out.push('import type { Dashboard } from "@grafana/schema";');
// TypeScript does not take a string for a string enum; JSON has no enums: compare values.
out.push(
  "type Json<T> = T extends string ? `${T}` : T extends readonly (infer U)[] ? Json<U>[] : " +
    "T extends object ? { [K in keyof T]: Json<T[K]> } : T;",
);
const modules = new Map();
const checks = [];
const unknown = [];
for (const p of panels(dashboard.panels)) {
  if (p.type === "row") continue;
  const mod = panelModule(p.type);
  if (!mod) {
    unknown.push(`${p.id} (${p.type})`);
    continue;
  }
  if (!modules.has(mod)) modules.set(mod, `P${modules.size}`);
  const ns = modules.get(mod);
  checks.push(`// panel ${p.id} (${p.type}): ${JSON.stringify(p.title ?? "")}`);
  checks.push(`export const options_${p.id}: Json<${ns}.Options> = ${JSON.stringify(p.options ?? {}, null, 2)};`);
  const custom = p.fieldConfig?.defaults?.custom;
  if (custom !== undefined) {
    checks.push(`export const custom_${p.id}: Json<${ns}.FieldConfig> = ${JSON.stringify(custom, null, 2)};`);
  }
}
if (unknown.length > 0) {
  console.error(`panels of a type @grafana/schema does not describe: ${unknown.join(", ")}`);
  process.exit(1);
}
for (const [mod, ns] of modules) out.push(`import type * as ${ns} from ${JSON.stringify(mod)};`);
out.push(`export const dashboard: Json<Dashboard> = ${JSON.stringify(dashboard, null, 2)};`);
out.push(...checks);
process.stdout.write(out.join("\n") + "\n");
