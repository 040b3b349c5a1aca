// gb::Error: the one exception type of glassbox. Messages name the tensor, file
// or shape at fault and what was expected. GB_CHECK(cond, parts...) builds the
// message from any streamable parts only when the check fails.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gb {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Parts>
[[noreturn]] void throw_error(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    throw Error(out.str());
}
}  // namespace detail

}  // namespace gb

#define GB_CHECK(cond, ...)                         \
    do {                                            \
        if (!(cond)) ::gb::detail::throw_error(__VA_ARGS__); \
    } while (0)

#define GB_FAIL(...) ::gb::detail::throw_error(__VA_ARGS__)
