// The worker thread of `tsformer serve`: loads the model (with its adapter) and runs the Host, so that
// decoding never blocks the HTTP event loop. Started by src/cli/serve.ts with workerData = WorkerInit;
// posts { op: "ready", context, vocabSize } once loaded, or { op: "fatal", message } when loading fails.

import { parentPort, workerData } from "node:worker_threads";
import { ChatTemplate, eosIdsOf, loadForInference, readTextFile } from "./api.js";
import { Host, type HostIn } from "./host.js";

export interface WorkerInit { model: string; adapter?: string; tokenizer?: string; chatTemplate?: string; modelName: string; parallel: number; weights?: string }

/** --chat-template: a tokenizer_config.json (its "chat_template"), or a Jinja file used as is. */
function templateFile(file: string): ChatTemplate {
  if (file.endsWith(".json")) return ChatTemplate.fromFile(file);
  return ChatTemplate.fromConfig({ chat_template: readTextFile(file, { label: `--chat-template ${file}` }) }, { file });
}

async function start(o: WorkerInit): Promise<Host> {
  const l = await loadForInference(o.model, o.tokenizer, o.adapter, {}, o.weights);
  if (!l.tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer (a llama2.c tokenizer .bin or a tokenizer.json)`);
  const chatTemplate = o.chatTemplate ? templateFile(o.chatTemplate) : l.chatTemplate();
  return new Host({ model: l.model, tokenizer: l.tokenizer, chatTemplate, eosIds: eosIdsOf(l.generation, l.tokenizer), modelName: o.modelName, parallel: o.parallel }, (m) => parentPort!.postMessage(m));
}

const port = parentPort!;
start(workerData as WorkerInit).then((host) => {
  port.on("message", (m: HostIn) => host.handle(m));
  port.postMessage({ op: "ready", context: host.context, vocabSize: host.engine.model.config.vocabSize, ragged: host.engine.ragged });
}, (e: unknown) => port.postMessage({ op: "fatal", message: e instanceof Error ? e.message : String(e) }));
