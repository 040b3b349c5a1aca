// Strict parsing of numbers from user text (options, metadata, spec strings):
// the whole text must be the number, in the stated range, with no wrap-around,
// or a gb::Error says which value, where it came from and what is accepted.
// (std::stoi and friends accept "28abc", wrap or throw bare std exceptions.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gb {

// A decimal integer in [lo, hi]. `what` names the value in the message
// (e.g. "--target", "metadata 'input_size' of model.safetensors").
int64_t parse_int(std::string_view text, int64_t lo, int64_t hi, const std::string& what);

// An unsigned decimal integer (seeds, RNG offsets: the whole uint64 range).
uint64_t parse_uint(std::string_view text, const std::string& what);

// A finite decimal number in [lo, hi].
double parse_number(std::string_view text, double lo, double hi, const std::string& what);

// Comma-separated finite numbers in [lo, hi] (at least one).
std::vector<double> parse_numbers(std::string_view text, double lo, double hi, const std::string& what);

// Levenshtein distance (insertions, deletions, substitutions of one char each): how near a
// misspelt name is to a known one, for "did you mean" in messages.
size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace gb
