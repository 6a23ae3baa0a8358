// State space models: HiPPO-LegS, S4D, the selective scan and the Mamba block; the SSM mixers of a model.
export { legsEncode, legsMatrices, legsReconstruct, type LegS } from "./hippo.js";
export { S4D, type S4DInit, type S4DOptions, type S4DState } from "./s4d.js";
export { S4DLayer, type S4DLayerOptions } from "./s4d-layer.js";
export { selectiveScan, type ScanOptions, type ScanResult } from "./scan.js";
export { Mamba, type MambaOptions, type MambaState } from "./mamba.js";
export { SSMState, hasSelfInit, type SelfInit } from "./state.js";
