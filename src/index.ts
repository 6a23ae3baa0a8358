// tsformer's public API: an explicit list, grouped as torch groups its own. Internals (kernel plumbing,
// raw no-graph helpers, memory bookkeeping hooks) stay out; cli/ uses only what is listed here.

// ---- tensors, autograd, memory, random numbers ----
export { Tensor, type TensorLike } from "./tensor/tensor.js";
export type { DType } from "./tensor/dtype.js";
export { noGrad, enableGrad, isGradEnabled } from "./tensor/autograd.js";
export { tidy, keep, keepReachable } from "./tensor/scope.js";
export { RandomGenerator, manualSeed, defaultGenerator, type RngState } from "./tensor/rng.js";
export { memoryStats, resetPeakMemory, trackLiveMemory, type MemoryStats } from "./tensor/memory.js";

// ---- backends and the native addon ----
export { backend, setBackend, availableBackends } from "./backend/registry.js";
export { nativeCpuFeatures, setNativeThreads, getNativeThreads, nativeLoadError } from "./backend/native/addon.js";
export type { Backend } from "./backend/backend.js";
export { dataPath, version } from "./backend/package-root.js";

// ---- ops (differentiable; also methods of Tensor) ----
export { tensor, empty, full, zeros, ones, zerosLike, onesLike, arange, randn, rand, randint, type CreateOptions } from "./ops/create.js";
export { contiguous, reshape, permute, transpose, narrow, expand, unsqueeze, squeeze, flatten, cast } from "./ops/views.js";
export { unary, neg, exp, log, sqrt, rsqrt, abs, square, sin, cos, tanh, sigmoid, relu, silu, gelu, softplus, elu, clamp, powScalar } from "./ops/unary.js";
export { add, sub, mul, div, maximum } from "./ops/binary.js";
export { pow } from "./ops/pow.js";
export { sum, mean, amax, amin, variance, logsumexp } from "./ops/reduce.js";
export { cat, stack, split, chunk } from "./ops/join.js";
export { matmul } from "./ops/matmul.js";
export { linear } from "./ops/linear.js";
export { loraLinear } from "./ops/lora.js";
export { groupedLinear, moeFfn } from "./ops/grouped.js";
export { conv2d, convTranspose2d, type Conv2dOptions, type ConvTranspose2dOptions, type IntPair } from "./ops/conv.js";
export { groupNorm, upsampleNearest2d, upsampleBilinear2d, avgPool2d, type BilinearOptions } from "./ops/image.js";
export { softmax, logSoftmax } from "./ops/softmax.js";
export { crossEntropy, type CrossEntropyOptions } from "./ops/loss.js";
export { layerNorm, rmsNorm } from "./ops/norm.js";
export { indexSelect, embedding, cumsum } from "./ops/indexing.js";
export { argmax, topk, gather, scatterAdd, clone, type TopkOptions } from "./ops/select.js";
export { triu, tril, where, maskedFill } from "./ops/mask.js";
export { dropout } from "./ops/dropout.js";
export { rope, defaultInvFreq, type RopeFrequencies, type RopeLayout, type PositionMap } from "./ops/rope.js";
export { reropeAttention, type ReropeOptions } from "./ops/rerope.js";
export { Rotary, type RotaryConfig, type Rerope } from "./nn/position/rotary.js";
export { ROPE_SCALINGS } from "./nn/position/registry.js";
export type { RopeScaling, RopeScheme } from "./nn/position/types.js";
export { attention, type AttentionOptions } from "./ops/attention.js";
export { flashAttention, type FlashAttentionOptions } from "./ops/flash.js";
export { grad, gradcheck, type GradcheckResult } from "./ops/functional.js";

// ---- file formats ----
export { readSafetensors, writeSafetensors, decodeSafetensors, encodeSafetensors, SafetensorsError, type SafeDType, type SafeTensor, type SafetensorsFile } from "./io/safetensors.js";
export { readLlama2cCheckpoint, parseLlama2cCheckpoint, Llama2cCheckpointError, type Llama2cConfig, type Llama2cCheckpoint } from "./io/llama2c.js";
export { saveCheckpoint, loadCheckpoint, loadModelFiles, CheckpointError, type Checkpoint, type ModelFiles, type LoadModelOptions, type TrainerState, type OptimizerState } from "./io/checkpoint.js";
export { detectFile, type Detected, type FileKind } from "./io/detect.js";
export { readTextFile, type ReadTextOptions } from "./io/text.js";
export { FileReadError, maxModelBytes, readJsonFile } from "./io/read.js";
export { writeFileAtomic, writeDirAtomic } from "./io/atomic.js";
export { HFDirError } from "./io/hf/weights.js";

// ---- tokenizers and data ----
export { decodeStream, type Tokenizer, type EncodeOptions, type DecodeStream } from "./tokenizers/tokenizer.js";
export { CharTokenizer, CharTokenizerError } from "./tokenizers/char.js";
export { Llama2cTokenizer, Llama2cTokenizerError } from "./tokenizers/llama2c.js";
export { HFTokenizer, HFTokenizerError, type HFTokenizerOptions } from "./tokenizers/hf.js";
export { ChatTemplate, ChatTemplateError, type ChatMessage, type ChatRenderOptions } from "./tokenizers/chat-template.js";
export { trainBpe, byteLevelBpeJson, BpeTrainError, type TrainBpeOptions, type TrainedBpe, type BpeTrainProgress, type ByteLevelBpeTokenizerJSON } from "./tokenizers/bpe-train.js";
export { gpt2TokenizerJson, sentencepieceTokenizerJson, llama2cPieces, llama2cTokenizerFiles, llama2cFromTokenizerJson, SPM_TYPE, type SpmPiece, type SpmPieceType, type SentencePieceJsonOptions } from "./tokenizers/hf-json.js";
export { TokenDataset, BatchSampler, type Batch, type Sampler } from "./data/batches.js";
export { DocumentDataset, DocumentBatcher, packBatch, padBatch, unpadBatch, IGNORE_INDEX, BATCHINGS, TINYSTORIES_SEPARATOR, type Batching, type DocumentBatcherOptions, type DocumentTextOptions, type LengthStats } from "./data/documents.js";

// ---- modules ----
export { Module } from "./nn/module.js";
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout, Conv2d, GroupNorm, makeNorm, skipInit, type Norm, type LayerOptions, type LinearOptions, type Conv2dLayerOptions } from "./nn/layers.js";
export { Sequential, ModuleList, type Layer } from "./nn/containers.js";
export { ReLU, GELU, SiLU, Tanh, Sigmoid } from "./nn/activations.js";
export * as init from "./nn/init-fns.js";
export { save, load, type SaveOptions, type LoadedModule } from "./nn/serialize.js";
export { GeluMLP, SwiGLU, makeFeedForward, type FeedForward } from "./nn/ffn/mlp.js";
export { initWeight, type InitScheme, type Role } from "./nn/init.js";
export type { Attention, AttentionConfig, AttentionState } from "./nn/attention/types.js";
export { SeqContext, LayerStates, type DecodingState, type ExplicitMask, type SeqContextInit, type KVPrefix } from "./nn/seq-context.js";
export { ATTENTION_VARIANTS, makeAttention, type AttentionName } from "./nn/attention/registry.js";

// ---- models ----
export { INIT_SCHEMES, parseModelConfig, gpt2Config, llamaConfig, modelConfigSchema, MIXERS, mixerOf, hasFFN, type MixerKind, type ModelConfig, type ModelConfigInput } from "./models/config.js";
export { TransformerLM, type ModelOptions, type HiddenOptions } from "./models/transformer.js";
export { withPositions, type PositionOptions } from "./models/positions.js";
export type { CausalLM, CausalLMOutput, ForwardOptions } from "./models/causal-lm.js";
export { Block, blockParts, type BlockParts, type FeedForwardPart } from "./models/block.js";
export { loadLlama2c, toLlama2c } from "./models/llama2c.js";
export { applyLora, mergeLora, unmergeLora, mergeAndUnload, setActiveAdapters, loraLayers, trainableParameters, formatTrainable, LoraLinear, type LoraConfig, type LoraOptions, type TrainableSummary } from "./peft/index.js";
export { saveAdapter, loadAdapter, adapterFiles, parseAdapterConfig } from "./peft/io.js";
export { applyPeft, peftFiles, loadPeft, PEFT_METHODS, type PeftSpec, type Peft, type PeftMethod } from "./peft/methods.js";
export { loadForInference, eosIdsOf } from "./peft/inference.js";
export { extractLora, truncatedSvd, type ExtractedLora } from "./peft/extract.js";
export { addHoulsbyAdapters, HoulsbyAdapter, AdaptedLinear, type HoulsbyOptions, type HoulsbyAdapters } from "./peft/adapter.js";
export { addPrefixTuning, PrefixTuning, PrefixState, type PrefixTuningOptions } from "./peft/prefix.js";
export { addPromptTuning, PromptTuning, type PromptTuningOptions } from "./peft/prompt.js";
export { VirtualTokenLM } from "./peft/virtual-tokens.js";
export { loadHFModel, saveHFModel, maxNewTokensFor, fromHFConfig, toHFConfig, hfArchFor, type HFModel, type HFArch, type HFDType, type HFModelConfig, type GenerationDefaults, type SaveHFOptions } from "./models/hf/index.js";
export { loadModel, loadTokenizer, type LoadedModel } from "./models/load.js";
export { modelFlops, SCAN_LIMIT, type FlopsReport, type LayerFlops } from "./models/flops.js";

// ---- decoding ----
export { generate, decodeStep, type GenerateOptions, type GenerateResult } from "./generate/generate.js";
export { sampleNext, validateSampling, type SamplingOptions } from "./generate/sampling.js";
export { scoreTokens, type ScoreResult, type ScoreOptions } from "./generate/score.js";

// ---- training ----
export { AdamW, SGD, defaultParamGroups, type AdamWOptions, type SGDOptions, type ParamGroup, type NamedParam } from "./train/optim.js";
export { makeSchedule, type Schedule, type ScheduleConfig } from "./train/schedule.js";
export { clipGradNorm } from "./train/clip.js";
export { appendMetrics, readMetrics, repairMetrics, writeLossPlot, linePlotSvg, writeSvg, type MetricsRecord } from "./train/metrics.js";
export { resolveCheckpointDir } from "./train/run-dir.js";
export { train, type TrainOptions, type TrainSummary, type StepInfo, type OptimConfig, type TrainableModel, type DocumentTrainData, type CheckpointParts } from "./train/trainer.js";
export { lmObjective, batchContext, type Objective, type ObjectiveResult } from "./train/objectives.js";
export { autocast, parsePrecision, PRECISIONS, type Precision } from "./ops/autocast.js";
export { GradScaler, type GradScalerOptions, type GradScalerState } from "./train/grad-scaler.js";
export { speculativeGenerate, SpeculativeDecoder, samplingProbs, checkSameTokenizer, expectedTokensPerCall, type SpeculativeOptions, type SpeculativeResult, type SpeculativeStats, type Lane } from "./generate/speculative.js";
export { planMemory, planConfig, defaultPrecision, memoryPreset, parameterCount, loraParameterCount, activationTerms, activationBytes, parameterBytes, gradientBytes, optimizerBytes, weightBytes, optimizerK, MEMORY_PRESETS, OPTIMIZERS, CHECKPOINTINGS, ZERO_STAGES, type PlanOptions, type PlanModel, type MemoryPlan, type MemoryRow, type ActivationTerm, type OptimizerName, type Checkpointing, type ZeroStage } from "./train/memory-plan.js";
export { checkpoint, checkpointSequential, type CheckpointOptions } from "./nn/checkpoint.js";
export { legsEncode, legsMatrices, legsReconstruct, type LegS, S4D, type S4DInit, type S4DOptions, type S4DState, selectiveScan, type ScanOptions, type ScanResult, Mamba, type MambaOptions, type MambaState, S4DLayer, type S4DLayerOptions, SSMState, hasSelfInit, type SelfInit } from "./nn/ssm/index.js";
export { MoEFeedForward, moeAuxLoss, type MoEOptions, type MoEAux } from "./nn/moe/moe.js";
export { Router, type GateKind, type Routing } from "./nn/moe/router.js";
export { balanceLoss, zLoss } from "./nn/moe/losses.js";

// serve
export { samplingWeights, sortedIds, tokenLogprobs, type TokenLogprob } from "./generate/sampling.js";
export type { Segments } from "./nn/seq-context.js";
export { BatchEngine, generateBatch, type BatchRequest, type BatchEngineOptions, type StepEvent, type TokenInfo, type SequenceResult } from "./generate/batch.js";

// ---- generative models ----
export { loadMnist, MnistBatcher, parseIdx, type MnistData, type MnistOptions, type MnistSplit } from "./data/mnist.js";
export { sampleToy, TOYS, type Toy } from "./data/toys.js";
export { mmd2, medianBandwidth, slicedWasserstein, randomDirections, gaussianFit, frechetDistance, frechetFeatureDistance } from "./generative/metrics.js";
export { diffusionSchedule, type DiffusionSchedule, type BetaScheduleKind, type ScheduleOptions } from "./generative/schedules.js";
export { ddpmLoss, ddpmLossAt, ddpmStep, ddpmSample, ddpmSigma, qSample, type Denoiser, type DdpmVariance } from "./generative/ddpm.js";
export { ddimStep, ddimSample, ddimTimesteps, ddimSigma } from "./generative/ddim.js";
export { pfOdeStep, pfOdeSample, pfOdeDrift, discreteTime, VP_DEFAULT, vpBeta, vpAlphaBar, type VpSde, type OdeMethod } from "./generative/pf-ode.js";
export { rectifiedFlowLoss, rectifiedFlowLossAt, distillLoss, eulerFlow, reflowPairs, type VelocityField, type FlowResult } from "./generative/rectified-flow.js";
export { poissonField, normalizedFieldTarget, pfgmLoss, pfgmPrior, pfgmSample, pfgmConfig, timeMlpField, PFGM_DEFAULTS, type PfgmConfig, type PfgmSampleOptions, type PoissonFieldFn } from "./generative/pfgm.js";
export { TimeMLP, timestepEmbedding, type TimeMlpOptions } from "./generative/time-mlp.js";
export { fit, type FitOptions } from "./generative/fit.js";
export { MnistMLP, trainMnistClassifier, classifierAccuracy, mnistFeatures, fidMnist } from "./generative/mnist-classifier.js";
export { quantizeForInference, type QuantizeOptions, type QuantizeSummary } from "./models/quantize.js";
export { WEIGHT_FORMATS } from "./ops/quantize.js";
export type { WeightFormat } from "./backend/backend.js";
export { FlowSequence, type FlowLayer, type FlowOutput, type FlowOptions } from "./generative/flows/flow.js";
export { AffineCoupling, CouplingNet, type CouplingMask, type CouplingOptions } from "./generative/flows/coupling.js";
export { ActNorm } from "./generative/flows/actnorm.js";
export { InvConv1x1 } from "./generative/flows/invconv.js";
export { Squeeze } from "./generative/flows/squeeze.js";
export { LogitTransform, dequantize, bitsPerDim } from "./generative/flows/preprocess.js";
export { MultiScaleFlow, type MultiScaleOptions, type MultiScaleOutput, type FlowVariant } from "./generative/flows/multiscale.js";
export { ReluMLP } from "./generative/mlp.js";
export { WganGp, gradientPenalty, trainWganGp, type WganGpOptions, type WganTrainOptions, type CriticLoss } from "./generative/wgan-gp.js";
export { madLoop, precisionRecall, type MadOptions, type MadGeneration } from "./generative/mad.js";
export { checkImageBatch, type ImageMethod, type ImageModel, type ImageSampleOptions } from "./generative/image-method.js";
export { imageMethod, IMAGE_METHODS } from "./generative/registry.js";
export { realnvpMethod, glowMethod, flowConfig, type FlowMethodConfig } from "./generative/flow-method.js";
export { UNet, type UNetOptions } from "./generative/unet.js";
export { ddpmMethod, type DdpmConfig } from "./generative/ddpm-method.js";
export { DiT, patchify, unpatchify, type DiTOptions } from "./generative/dit.js";
export { ditMethod, logitNormalTimes, type DitConfig } from "./generative/dit-method.js";
export { KLAutoencoder, gaussianKl, type AutoencoderConfig } from "./generative/autoencoder.js";
export { LatentDenoiser, cfgCombine, type LatentDenoiserConfig } from "./generative/ldm.js";
export { ldmMethod, type LdmConfig } from "./generative/ldm-method.js";
export { trainImages, loadImageRun, writeSampleGrid, runCheckpoint, IMAGE_TRAIN_DEFAULTS, type ImageTrainSettings, type ImageTrainProgress, type TrainImagesOptions, type ImageTrainResult, type ImageGridOptions } from "./generative/train-images.js";
export { MedusaHeads, MedusaLM, medusaObjective, loadMedusaHeads } from "./peft/medusa.js";
export { medusaGenerate, DEFAULT_MEDUSA_TREE, type MedusaOptions, type MedusaStats, type MedusaResult, type MedusaTree } from "./generate/medusa.js";
export { MTPModules, MTPLM, mtpObjective, checkMTPOptions, MTP_DEFAULT_WEIGHT, MTP_FILE, mtpCheckpointParts, loadMTPModules } from "./models/mtp.js";
export { mtpGenerate, type MTPGenerateOptions, type MTPStats, type MTPResult } from "./generate/mtp.js";
