// What a training run's files say, in words and numbers (trainer.cpp's helpers; not part of the public API):
// the history as JSON and back, exact doubles, the moment a resume file records, which checkpoint files are
// current (read back from the files), the first non-finite tensor, and the optimizer a configuration names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../models/checkpoint.h"
#include "optimizer.h"
#include "trainer.h"

namespace gb::train::detail {

std::string fmt(double v, int digits);  // fixed-point with `digits` decimals
nlohmann::json history_json(const std::vector<EpochRecord>& h);
// A resume file's metadata entry, or an error naming the file and the key.
const std::string& resume_entry(const std::map<std::string, std::string>& meta, const std::string& key,
                                const std::string& source);
std::vector<EpochRecord> history_from_json(const std::string& text, const std::string& source);
// Doubles in resume metadata are written as hex floats: exact, so a resumed
// epoch's running sums are the same bits as an uninterrupted run's.
std::string exact(double v);
double parse_exact(const std::string& text, const std::string& what);  // a finite number >= 0, else gb::Error
// Name of the first tensor holding a NaN or an infinity ("" when all are finite).
std::string first_non_finite(const models::NamedTensors& tensors);
// "epoch 3" (3 epochs done) or "batch 40 of epoch 4" (mid-epoch resume state).
std::string moment_text(const std::string& epoch, const std::string& batch);
// Which checkpoint files are current, for every error that stops a run: "<model> is from epoch 3, <resume> is
// from epoch 2 (resume with it: --resume <resume>)".
std::string current_files(const std::string& model_path, const std::string& resume_path);
std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, models::NamedTensors params);

}  // namespace gb::train::detail
