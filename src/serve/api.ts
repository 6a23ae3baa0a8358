// What the server uses of the library: the public API only (serve/ sits beside cli/, above index.ts).
export {
  BatchEngine, ChatTemplate, eosIdsOf, loadForInference, readTextFile,
  type ChatMessage, type CausalLM, type Module, type SequenceResult, type StepEvent, type Tokenizer, type TokenInfo, type BatchRequest,
} from "../index.js";
