// The FID-MNIST classifier (ours): a short run on a slice of real MNIST learns (accuracy well above chance
// on held-out test images), features are [n, 256], and wrong image sizes are refused.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import { loadMnist } from "../../src/data/mnist.js";
import { classifierAccuracy, fidMnist, MnistMLP, mnistFeatures, trainMnistClassifier } from "../../src/generative/mnist-classifier.js";

describe("MNIST classifier", () => {
  test("2 epochs on 2000 training images: > 80% on 1000 test images (chance: 10%); FID-MNIST(train, test) > 0", () => {
    const train = loadMnist("train", { limit: 2000 }), test = loadMnist("test", { limit: 1000 });
    const model = trainMnistClassifier(train, { epochs: 2, batchSize: 32 });
    const acc = classifierAccuracy(model, test);
    assert.ok(acc > 0.8, `accuracy ${acc}`);
    const f = mnistFeatures(model, test.images.subarray(0, 300 * 784));
    assert.deepEqual(f.shape, [300, 256]);
    assert.ok(fidMnist(model, train.images.subarray(0, 300 * 784), test.images.subarray(0, 300 * 784)) > 0);
  });

  test("images that are not [B, 784] are refused with the expected size", () => {
    const model = new MnistMLP(new T.RandomGenerator(0));
    assert.throws(() => model.forward(T.zeros([2, 3, 32, 32])), /images must be \[B, 784\] \(28x28, one channel, in \[0, 1\]\), got \[2, 3, 32, 32\]/);
  });
});
