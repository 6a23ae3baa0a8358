// State space models: HiPPO-LegS, S4D, the selective scan and the Mamba block.
export { legsEncode, legsMatrices, legsReconstruct, type LegS } from "./hippo.js";
export { S4D, type S4DInit, type S4DOptions, type S4DState } from "./s4d.js";
export { selectiveScan, type ScanOptions, type ScanResult } from "./scan.js";
export { Mamba, type MambaOptions, type MambaState } from "./mamba.js";
