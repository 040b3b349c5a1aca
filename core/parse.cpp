#include "core/parse.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "core/error.h"

namespace gb {

namespace {
// The accepted range in words, without printing 309-digit limits.
std::string int_range(int64_t lo, int64_t hi) {
    if (lo == INT64_MIN && hi == INT64_MAX) return "an integer";
    if (hi == INT64_MAX) return "an integer >= " + std::to_string(lo);
    return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

std::string number_range(double lo, double hi) {
    std::ostringstream s;
    s.precision(6);
    if (lo <= -1e300 && hi >= 1e300) return "a finite number";
    if (hi >= 1e300) s << "a number >= " << lo;
    else if (lo <= -1e300) s << "a number <= " << hi;
    else s << "a number in [" << lo << ", " << hi << "]";
    return s.str();
}
}  // namespace

int64_t parse_int(std::string_view text, int64_t lo, int64_t hi, const std::string& what) {
    int64_t v = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    if (!text.empty() && text[0] == '+') ++begin;  // "+3" is fine; from_chars refuses the sign
    const auto [ptr, ec] = std::from_chars(begin, end, v);
    const std::string range = int_range(lo, hi);
    GB_CHECK(ec != std::errc::result_out_of_range, what, ": '", text, "' is too large (expected ", range, ")");
    GB_CHECK(ec == std::errc() && ptr == end && begin != end, what, ": '", text, "' is not ", range);
    GB_CHECK(v >= lo && v <= hi, what, ": ", v, " is out of range (expected ", range, ")");
    return v;
}

uint64_t parse_uint(std::string_view text, const std::string& what) {
    uint64_t v = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, v);
    GB_CHECK(ec != std::errc::result_out_of_range, what, ": '", text, "' is too large (expected an integer in [0, 2^64))");
    GB_CHECK(ec == std::errc() && ptr == end && !text.empty(), what, ": '", text, "' is not an integer in [0, 2^64)");
    return v;
}

double parse_number(std::string_view text, double lo, double hi, const std::string& what) {
    double v = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    if (!text.empty() && text[0] == '+') ++begin;
    const auto [ptr, ec] = std::from_chars(begin, end, v);
    const std::string range = number_range(lo, hi);
    GB_CHECK(ec != std::errc::result_out_of_range, what, ": '", text, "' is out of range (expected ", range, ")");
    GB_CHECK(ec == std::errc() && ptr == end && begin != end && std::isfinite(v), what, ": '", text, "' is not ", range);
    GB_CHECK(v >= lo && v <= hi, what, ": ", text, " is out of range (expected ", range, ")");
    return v;
}

std::vector<double> parse_numbers(std::string_view text, double lo, double hi, const std::string& what) {
    std::vector<double> out;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        out.push_back(parse_number(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start),
                                   lo, hi, what));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

}  // namespace gb
