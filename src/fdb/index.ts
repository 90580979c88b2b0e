// Public surface of the forwarding tables, for src/dataplane, src/control and src/cli.
// Only what those import; tests reach into the modules themselves.

export { TableError } from "./errors.js";
export { Fdb, Learn } from "./fdb.js";
export { parsePrefix, parsePrefix6 } from "./input.js";
export { NeighTable } from "./neigh.js";
export { Neigh6Table } from "./neigh6.js";
export { type Route, type RouteSpec, RouteTable } from "./route.js";
export { type Route6, type Route6Spec, RouteTable6 } from "./route6.js";
