// Public surface of the forwarding tables, for src/dataplane, src/control and src/cli.
// Only what those import; tests reach into the modules themselves.

export { TableError } from "./errors.js";
export { Fdb, Learn } from "./fdb.js";
export { parsePrefix } from "./input.js";
export { NeighTable } from "./neigh.js";
export { type Route, type RouteSpec, RouteTable } from "./route.js";
