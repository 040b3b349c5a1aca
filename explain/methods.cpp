// Method specs: parsing and validation against the method table (method_registry.h), and
// attribute(), which runs the registered function.
#include "explain/methods.h"

#include <algorithm>
#include <sstream>

#include "core/parse.h"

namespace gb::explain {

namespace {

std::vector<std::string> all_names() {
    std::vector<std::string> names;
    for (const auto& m : method_table()) {
        names.push_back(m.name);
        names.insert(names.end(), m.aliases.begin(), m.aliases.end());
    }
    return names;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

// Everything about a spec that can be checked without a model: the method, its argument,
// and every option's name and value. Returns the method.
const MethodInfo& validate(const MethodSpec& s) {
    const MethodInfo* m = find_method(s.name);
    if (!m) {
        std::vector<std::string> names;
        for (const auto& info : method_table()) names.push_back(info.name);
        GB_FAIL("unknown method '", s.text, "'", did_you_mean(s.name, all_names()), " (methods: ", joined(names),
                "; glassbox explain --list describes them)");
    }
    if (m->arg.name.empty()) {
        GB_CHECK(s.arg.empty(), "method '", s.text, "' takes no ':", s.arg, "' argument");
    } else if (s.arg.empty()) {
        GB_CHECK(!m->arg.required, "method '", s.text, "': name a ", m->arg.what, ", e.g. ", m->name, ":",
                 m->arg.choices.empty() ? m->arg.name : m->arg.choices.front());
    } else if (!m->arg.choices.empty() && std::find(m->arg.choices.begin(), m->arg.choices.end(), s.arg) == m->arg.choices.end()) {
        GB_FAIL("method '", s.text, "': unknown ", m->arg.what, " '", s.arg, "'", did_you_mean(s.arg, m->arg.choices), " (",
                m->arg.what, "s: ", joined(m->arg.choices), ")");
    }
    for (const auto& [key, value] : s.params) {
        const MethodParam* p = m->param(key);
        if (!p) {
            std::vector<std::string> keys;
            for (const auto& q : m->params) keys.push_back(q.key);
            GB_FAIL("method '", s.text, "': unknown option '", key, "'", did_you_mean(key, keys),
                    keys.empty() ? " (it takes none)" : " (options: " + joined(keys) + ")");
        }
    }
    return *m;
}

// The spec's values, read as the method will read them: range and type errors surface now.
void check_values(const MethodInfo& m, const MethodSpec& s) {
    for (const auto& [key, value] : s.params) {
        const MethodParam& p = *m.param(key);
        const std::string what = "method '" + s.text + "': " + key;
        switch (p.type) {
            case MethodParam::Type::Int: parse_int(value, static_cast<int64_t>(p.min), static_cast<int64_t>(p.max), what); break;
            case MethodParam::Type::Seed: parse_uint(value, what); break;
            case MethodParam::Type::Number: parse_number(value, p.min, p.max, what); break;
            case MethodParam::Type::Choice:
                GB_CHECK(std::find(p.choices.begin(), p.choices.end(), value) != p.choices.end(), what, ": unknown value '",
                         value, "' (expected ", joined(p.choices), ")", did_you_mean(value, p.choices));
                break;
        }
    }
}

}  // namespace

MethodSpec parse_method(const std::string& text) {
    MethodSpec s;
    s.text = text;
    const auto colon = text.find(':');
    s.name = text.substr(0, colon);
    GB_CHECK(!s.name.empty(), "empty method name in '", text, "'");
    if (colon != std::string::npos) {
        std::stringstream in(text.substr(colon + 1));
        std::string item;
        while (std::getline(in, item, ',')) {
            const auto eq = item.find('=');
            if (eq == std::string::npos) {
                GB_CHECK(s.arg.empty() && !item.empty(), "method '", text, "': expected name:arg,key=value,...");
                s.arg = item;
            } else {
                GB_CHECK(eq > 0, "method '", text, "': option without a name");
                GB_CHECK(!s.params.count(item.substr(0, eq)), "method '", text, "': option '", item.substr(0, eq), "' is given twice");
                s.params[item.substr(0, eq)] = item.substr(eq + 1);
            }
        }
    }
    const MethodInfo& m = validate(s);
    check_values(m, s);
    s.name = m.name;  // an alias names the method
    return s;
}

std::vector<MethodInfo> list_methods() { return method_table(); }

Attribution attribute(const Trace& trace, const MethodSpec& s, const std::vector<Target>& targets,
                      const PresetOptions& preset) {
    // A MethodSpec may also be built by hand.
    const MethodInfo& m = validate(s);
    check_values(m, s);
    return m.fn(MethodCall{trace, s, targets, preset});
}

}  // namespace gb::explain
