// A small training run for the tests: vgg-mini on a fake Fashion-MNIST folder
// (tests/idx_writer.h), 2 epochs, cosine schedule, light augmentation.
#pragma once

#include <string>

#include "train/trainer.h"

namespace gb::testing {

inline train::TrainConfig small_train_config(const std::string& data_dir, const std::string& out, int64_t batch_size,
                                             uint64_t seed) {
    train::TrainConfig c;
    c.model = "vgg-mini";
    c.data = "fashion-mnist";
    c.data_dir = data_dir;
    c.epochs = 2;
    c.batch_size = batch_size;
    c.lr = 0.05f;
    c.schedule.kind = "cosine";
    c.seed = seed;
    c.out_dir = out;
    c.crop_padding = 1;
    c.hflip = true;
    return c;
}

}  // namespace gb::testing
