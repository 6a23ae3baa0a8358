// `tsformer serve`: an OpenAI-compatible HTTP server (Node's http module). This thread is the
// transport only: routes, the API key, body and queue limits, JSON parsing, streaming the records the
// engine sends, cancelling on client disconnect, graceful shutdown. Validation, templating,
// tokenization and decoding run in a worker thread (src/serve/worker.ts), which is started by its file
// URL (not imported: cli/ uses the public API only), so that decoding never blocks this event loop.

import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";

export interface ServeCliOptions {
  model: string; adapter?: string; tokenizer?: string; chatTemplate?: string;
  host: string; port: number; apiKey?: string; parallel: number; maxQueue: number; maxBody: number; modelName?: string; weights?: string;
}

export const SERVE_DEFAULTS = { host: "127.0.0.1", port: 8000, parallel: 16, maxQueue: 64, maxBody: 1 << 20 };

export interface RunningServer { url: string; port: number; modelName: string; context: number; close(graceMs?: number): Promise<void> }

// The worker's messages (src/serve/host.ts HostOut and worker.ts), as this side reads them.
type FromWorker =
  | { op: "ready"; context: number } | { op: "fatal"; message: string }
  | { op: "json"; rid: number; body: unknown } | { op: "error"; rid: number; status: number; body: unknown }
  | { op: "accept"; rid: number } | { op: "sse"; rid: number; data: string; end: boolean } | { op: "many"; msgs: FromWorker[] };

const ENGINE_ROUTES = new Set(["/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize"]);
const GENERATE_ROUTES = new Set(["/v1/chat/completions", "/v1/completions"]);

/**
 * The engine worker: src/serve/worker.js next to this module's folder when compiled (dist/), or
 * worker.ts under tsx, whose loader a worker does not inherit: it registers tsx's ESM API first.
 */
function startWorker(data: unknown): Worker {
  const ts = import.meta.url.endsWith(".ts");
  const url = new URL(`../serve/worker.${ts ? "ts" : "js"}`, import.meta.url);
  if (!ts) return new Worker(url, { workerData: data });
  const api = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

/** Whether the Authorization header carries the key (compared in constant time, as secrets should be). */
function sameKey(header: string | undefined, key: string): boolean {
  const a = Buffer.from(header ?? ""), b = Buffer.from(`Bearer ${key}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

function errorBody(status: number, message: string, code: string | null = null, param: string | null = null): unknown {
  const type = status === 401 ? "authentication_error" : status === 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error";
  return { error: { message, type, param, code } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.end(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The body as a string, or an error status: 413 past maxBody bytes (the rest is not read). */
function readBody(req: IncomingMessage, maxBody: number): Promise<string | 413> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBody) { resolve(413); return; }
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (b: Buffer) => {
      size += b.length;
      if (size > maxBody) { resolve(413); req.removeAllListeners("data"); req.resume(); return; }
      parts.push(b);
    });
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    req.on("error", reject);
  });
}

function checkOptions(o: ServeCliOptions): void {
  const int = (flag: string, v: number, min: number) => { if (!Number.isInteger(v) || v < min) throw new Error(`${flag} expects an integer >= ${min}, got ${v}`); };
  int("--parallel", o.parallel, 1);
  int("--max-queue", o.maxQueue, 0);
  int("--max-body", o.maxBody, 1);
  int("--port", o.port, 0);
  if (o.port > 65535) throw new Error(`--port expects a port number <= 65535, got ${o.port}`);
  if (o.apiKey === "") throw new Error("--api-key is empty; give a key, or leave the flag out to serve without one");
}

/** Loads the model in the worker, then listens; resolves once both are ready (load errors reject). */
export async function startServer(o: ServeCliOptions, log: (s: string) => void = (s) => process.stderr.write(s)): Promise<RunningServer> {
  checkOptions(o);
  const modelName = o.modelName ?? o.model.replace(/\/+$/, "").split("/").pop()!;
  const worker = startWorker({ model: o.model, adapter: o.adapter, tokenizer: o.tokenizer, chatTemplate: o.chatTemplate, modelName, parallel: o.parallel, weights: o.weights });
  const ready = await new Promise<{ context: number }>((resolve, reject) => {
    worker.once("message", (m: FromWorker) => (m.op === "ready" ? resolve(m) : reject(new Error(m.op === "fatal" ? m.message : `the engine worker sent ${m.op} before ready`))));
    worker.once("error", reject);
  }).catch(async (e: Error) => { await worker.terminate(); throw e; });
  const created = Math.floor(Date.now() / 1000);

  const pending = new Map<number, { res: ServerResponse; generate: boolean }>();
  const streamed = new Set<number>();
  let nextRid = 0, shuttingDown = false, engineDown: string | null = null;
  const running = () => [...pending.values()].filter((p) => p.generate).length;

  const onMessage = (m: FromWorker): void => {
    if (m.op === "many") { m.msgs.forEach(onMessage); return; }
    if (!("rid" in m)) return;
    const p = pending.get(m.rid);
    if (!p) return;
    const { res } = p;
    if (m.op === "accept") {
      if (!res.headersSent && !res.destroyed && p.generate && streamed.has(m.rid)) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
        res.flushHeaders();
      }
      return;
    }
    if (m.op === "sse") {
      res.write(m.data);
      if (m.end) { res.end(); pending.delete(m.rid); streamed.delete(m.rid); }
      return;
    }
    pending.delete(m.rid);
    streamed.delete(m.rid);
    sendJson(res, m.op === "json" ? 200 : m.status, m.body);
  };
  worker.on("message", onMessage);
  const failAll = (why: string) => {
    engineDown = why;
    for (const [, p] of pending) sendJson(p.res, 500, errorBody(500, why));
    pending.clear();
  };
  worker.on("error", (e) => { log(`tsformer serve: the engine worker failed: ${e.message}\n`); failAll(`the engine failed: ${e.message}`); });
  worker.on("exit", (code) => { if (!shuttingDown) failAll(`the engine worker exited (code ${code})`); });

  const toEngine = (res: ServerResponse, path: string, body: unknown, generate: boolean, stream: boolean) => {
    const rid = nextRid++;
    pending.set(rid, { res, generate });
    if (stream) streamed.add(rid);
    // a client gone before its response ended: the engine drops its sequences and frees the slot
    res.on("close", () => {
      if (!res.writableEnded && pending.delete(rid)) { streamed.delete(rid); worker.postMessage({ op: "cancel", rid }); }
    });
    worker.postMessage({ op: "request", rid, path, body });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (shuttingDown || engineDown) return sendJson(res, 503, errorBody(503, engineDown ?? "the server is shutting down", "shutting_down"));
    // the engine answers between two steps: status, sequences decoding, requests queued
    if (path === "/health" && req.method === "GET") return toEngine(res, path, null, false, false);
    const known = path === "/v1/models" || ENGINE_ROUTES.has(path);
    if (!known) return sendJson(res, 404, errorBody(404, `Unknown route ${req.method} ${path}; this server has GET /health, GET /v1/models, POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize`, "unknown_route"));
    if (o.apiKey !== undefined && !sameKey(req.headers.authorization, o.apiKey)) {
      return sendJson(res, 401, errorBody(401, req.headers.authorization ? "Incorrect API key provided" : "Missing API key: send the header Authorization: Bearer <key>", "invalid_api_key"));
    }
    const method = path === "/v1/models" ? "GET" : "POST";
    if (req.method !== method) return sendJson(res, 405, errorBody(405, `${path} takes ${method}, got ${req.method}`, "method_not_allowed"));
    if (path === "/v1/models") {
      return sendJson(res, 200, { object: "list", data: [{ id: modelName, object: "model", created, owned_by: "tsformer", max_model_len: ready.context }] });
    }
    const text = await readBody(req, o.maxBody);
    if (text === 413) { res.setHeader("connection", "close"); return sendJson(res, 413, errorBody(413, `the request body exceeds the server's --max-body of ${o.maxBody} bytes`, "body_too_large")); }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return sendJson(res, 400, errorBody(400, `the request body is not valid JSON: ${(e as Error).message}`, "invalid_json"));
    }
    const generate = GENERATE_ROUTES.has(path);
    const inFlight = running();
    if (generate && inFlight >= o.parallel + o.maxQueue) {
      return sendJson(res, 429, errorBody(429, `the server is busy: ${inFlight} requests in flight, its limit (--parallel ${o.parallel} + --max-queue ${o.maxQueue}); retry later`, "queue_full"));
    }
    toEngine(res, path, body, generate, generate && (body as { stream?: unknown })?.stream === true);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => sendJson(res, 500, errorBody(500, `internal error: ${e.message}`)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => resolve());
  }).catch(async (e: Error) => { await worker.terminate(); throw new Error(`--host ${o.host} --port ${o.port}: ${e.message}`); });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${o.host}:${port}`, port, modelName, context: ready.context,
    /** Stops accepting (503 on open connections), lets running requests finish for graceMs, cancels the rest, stops the engine. */
    async close(graceMs = 10_000): Promise<void> {
      if (shuttingDown) return;
      shuttingDown = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (pending.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const [rid, p] of pending) { worker.postMessage({ op: "cancel", rid }); p.res.end(); }
      pending.clear();
      server.closeAllConnections();
      await closed;
      await worker.terminate();
    },
  };
}

/** `tsformer serve`: serve until SIGINT / SIGTERM, then shut down gracefully. */
export async function runServe(o: ServeCliOptions): Promise<void> {
  const s = await startServer(o);
  process.stderr.write(`tsformer serve: model "${s.modelName}" (context ${s.context}) on ${s.url}/v1 (--parallel ${o.parallel}, --max-queue ${o.maxQueue})\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`tsformer serve: ${sig}: finishing the requests in flight, then closing\n`);
      s.close().then(resolve, resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
