// The image-generative methods by name (`tsformer diffuse --method NAME`): one line per method.

import { ddpmMethod } from "./ddpm-method.js";
import { ditMethod } from "./dit-method.js";
import { glowMethod, realnvpMethod } from "./flow-method.js";
import type { ImageMethod } from "./image-method.js";
import { ldmMethod } from "./ldm-method.js";

const METHODS: Record<string, ImageMethod> = {
  ddpm: ddpmMethod,
  dit: ditMethod,
  ldm: ldmMethod,
  realnvp: realnvpMethod,
  glow: glowMethod,
};

export const IMAGE_METHODS: readonly string[] = Object.keys(METHODS);

/** The method called `name`; one clear error naming the known ones otherwise. */
export function imageMethod(name: string): ImageMethod {
  const m = Object.hasOwn(METHODS, name) ? METHODS[name] : undefined;
  if (!m) throw new RangeError(`unknown generative method ${JSON.stringify(name)}; expected one of: ${Object.keys(METHODS).join(", ")}`);
  return m;
}
