// `tsformer chat`: an interactive terminal chat with a model that has a chat template (an HF
// directory's tokenizer_config.json). Each turn renders the whole history with the template
// (add_generation_prompt), encodes it without adding special tokens (the template writes them, as
// transformers' apply_chat_template does) and streams the reply until an end-of-turn token.

import { createInterface } from "node:readline";
import { eosIdsOf, generate, loadForInference, maxNewTokensFor, type ChatMessage } from "../index.js";

export interface ChatCliOptions {
  model: string; tokenizer?: string; adapter?: string; system?: string; maxNewTokens?: number;
  temperature?: number; topK?: number; topP?: number; repetitionPenalty?: number; seed: number;
}

/** What a chat session did, turn by turn (the rendered prompt and the reply): for tests and --json. */
export interface ChatTurn { prompt: string; promptTokens: number; reply: string; stoppedBy: string }

const HELP = "(type a message; /reset clears the history, /exit or Ctrl-D quits)";

export async function runChat(o: ChatCliOptions, input: NodeJS.ReadableStream = process.stdin, write = (s: string) => { process.stdout.write(s); }): Promise<ChatTurn[]> {
  const loaded = await loadForInference(o.model, o.tokenizer, o.adapter);
  const { model, tokenizer, generation } = loaded;
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: chat needs an HF directory with tokenizer.json (or pass --tokenizer)`);
  const chatTemplate = loaded.chatTemplate();
  if (!chatTemplate) throw new Error(`${o.model} has no chat template (tokenizer_config.json has no "chat_template"): a base model; use \`tsformer generate\` instead`);
  const g = generation ?? {};
  const eos = eosIdsOf(g, tokenizer);
  const sampling = {
    temperature: o.temperature ?? g.temperature ?? 0.7, topK: o.topK ?? g.topK ?? 0, topP: o.topP ?? g.topP ?? 1,
    repetitionPenalty: o.repetitionPenalty ?? g.repetitionPenalty ?? 1,
  };
  const system: ChatMessage[] = o.system ? [{ role: "system", content: o.system }] : [];
  let history: ChatMessage[] = [...system];
  const turns: ChatTurn[] = [];
  const interactive = (input as { isTTY?: boolean }).isTTY === true;
  const rl = createInterface({ input, terminal: false });
  write(`${HELP}\n`);
  if (interactive) write("> ");
  for await (const line of rl) {
    const text = line.trim();
    if (text === "/exit") break;
    if (text === "/reset") { history = [...system]; write("(history cleared)\n"); if (interactive) write("> "); continue; }
    if (text === "") { if (interactive) write("> "); continue; }
    history.push({ role: "user", content: line });
    // The oldest exchanges leave the window first when the conversation outgrows the context.
    let prompt = chatTemplate.render(history, { addGenerationPrompt: true });
    let ids = tokenizer.encode(prompt);
    while (ids.length + 1 > model.config.maxSeqLen && history.length > system.length + 1) {
      history.splice(system.length, 2);
      prompt = chatTemplate.render(history, { addGenerationPrompt: true });
      ids = tokenizer.encode(prompt);
    }
    if (ids.length + 1 > model.config.maxSeqLen) {
      history.pop();
      write(`(that message takes ${ids.length} tokens; the model's context is ${model.config.maxSeqLen})\n`);
      if (interactive) write("> ");
      continue;
    }
    const r = generate(model, ids, {
      ...sampling, maxNewTokens: Math.min(o.maxNewTokens ?? maxNewTokensFor(g, ids.length) ?? 256, model.config.maxSeqLen - ids.length), seed: o.seed + turns.length,
      eosId: eos, tokenizer, onText: write,
    });
    write("\n");
    const reply = r.text ?? tokenizer.decode(r.ids);
    history.push({ role: "assistant", content: reply });
    turns.push({ prompt, promptTokens: ids.length, reply, stoppedBy: r.stoppedBy });
    if (interactive) write("> ");
  }
  rl.close();
  return turns;
}
