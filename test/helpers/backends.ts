// Runs a suite once per available backend (js always; native when the addon loaded).

import { after, before, describe } from "node:test";
import * as T from "../../src/index.js";

export function forEachBackend(title: string, suite: (name: string) => void): void {
  for (const name of T.availableBackends()) {
    describe(`${title} [${name}]`, () => {
      let prev = "js";
      before(() => { prev = T.backend().name; T.setBackend(name); });
      after(() => T.setBackend(prev));
      suite(name);
    });
  }
}
