// Train vgg-mini on Fashion-MNIST (Debian's dataset-fashion-mnist) and write a checkpoint.
// Usage: train OUT_DIR [EPOCHS] [TRAIN_IMAGES]   (TRAIN_IMAGES 0 = all 60,000)
#include <glassbox/train/trainer.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: train OUT_DIR [EPOCHS] [TRAIN_IMAGES]\n";
        return 2;
    }
    gb::train::TrainConfig config;  // vgg-mini, SGD with Nesterov momentum, cosine schedule
    config.out_dir = argv[1];
    config.epochs = argc > 2 ? std::atoll(argv[2]) : 1;
    config.train_limit = argc > 3 ? std::atoll(argv[3]) : 0;
    config.test_limit = 1000;  // evaluate each epoch on the first 1,000 test images

    gb::train::Trainer trainer(config, std::cout);  // progress and the epoch table go to std::cout
    const gb::train::TrainResult result = trainer.run();
    std::cout << "test accuracy " << result.history.back().test_acc << ", checkpoint " << result.model_path << "\n";
} catch (const std::exception& e) {  // gb::Error says what went wrong, naming the file or option
    std::cerr << "train: " << e.what() << "\n";
    return 1;
}
