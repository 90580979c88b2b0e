// The package's version, read from package.json at run time: src/cli (tsx) and
// dist/cli (compiled) both sit two levels below the package root, so one relative path
// serves the checkout and an installed package.
import { readFileSync } from "node:fs";

export const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;
