// The method table: every explanation method that `attribute` runs is registered
// here once, with its name, aliases, kind, its ":ARG" argument, its key=value
// parameters (type, default, range, help), a description, whether its maps are
// signed, and the function that computes it. Parsing and validation of specs
// (explain/methods.h, with "did you mean" for near misses), `glassbox explain
// --list`, report captions and the method table of docs/explain.md all read it.
//
// Adding a method = one source file explain/methods/<file>.cpp (plus its test):
//
//   GB_EXPLAIN_METHODS(<file>) {
//       MyOptions d;  // the options struct: its defaults are the table's
//       registry.add({.name = "mine", .kind = MethodKind::Gradient, .description = "...",
//                     .params = {MethodParam::integer("steps", d.steps, 1, 1000, "...")},
//                     .is_signed = true,
//                     .fn = [](const MethodCall& c) { MyOptions o; o.steps = c.integer("steps"); ... }});
//   }
//
// <file> must be the file's name without ".cpp" (a C identifier): CMake globs
// explain/methods/*.cpp and generates one function that calls every file's
// registration by that name (CMakeLists.txt says why: a self-registering
// static object in a static library is dropped by the linker). A name that
// does not match fails to link, naming the missing function.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "composite.h"
#include "trace.h"

namespace gb::explain {

struct MethodSpec;
struct Attribution;

// relevance (LRP), cam, gradient, perturbation, baseline (a reference map such as random),
// model (model-level: maps computed from the model rather than from one input's trace).
enum class MethodKind { Relevance, Cam, Gradient, Perturbation, Baseline, ModelLevel };
std::string method_kind_name(MethodKind kind);

// What a method's map sums to over the image, which the conservation metric checks: nothing in particular
// (gradients, CAMs, perturbation scores); the seed (LRP from a one-hot seed: 1); or the target's logit minus
// its logit at the zero baseline (completeness: Integrated Gradients, DeepLIFT).
enum class Conserves { Nothing, Seed, ZeroBaselineDifference };

// One key=value option of a method.
struct MethodParam {
    enum class Type { Int, Seed, Number, Choice };
    std::string key;
    Type type = Type::Number;
    // The value used when the spec does not give one (as the spec would write it), or
    // empty when it depends on the input (then `default_help` says what it is).
    std::string default_value;
    std::string default_help;
    double min = 0, max = 0;           // Int, Number: the accepted range (inclusive)
    std::vector<std::string> choices;  // Choice: the accepted values
    std::string help;

    static MethodParam integer(std::string key, int64_t fallback, int64_t min, int64_t max, std::string help);
    static MethodParam number(std::string key, double fallback, double min, double max, std::string help);
    // A number whose default is a property of the input (e.g. its lower bound), described by `default_help`.
    static MethodParam number_from_input(std::string key, std::string default_help, double min, double max, std::string help);
    static MethodParam seed(uint64_t fallback, std::string help);
    static MethodParam choice(std::string key, std::string fallback, std::vector<std::string> choices, std::string help);
    // "samples=100 (integer in [1, 1000000])" and the like, for --list and the docs.
    std::string usage() const;
};

// The ":ARG" part of a spec (the composite of lrp, the layer of a CAM).
struct MethodArg {
    std::string name;                  // "" = the method takes none; else e.g. "COMPOSITE", "LAYER"
    bool required = false;
    std::string what;                  // the noun in messages: "composite", "layer"
    std::vector<std::string> choices;  // empty: any text (checked when the method runs, e.g. a layer path)
    std::string help;                  // what it is, and the default when optional
};

// What a method's function gets: the trace, the spec, targets and input range, and its
// options parsed against the table (a key the spec leaves out gives the table's default).
struct MethodCall {
    const Trace& trace;
    const MethodSpec& spec;
    const std::vector<Target>& targets;
    const PresetOptions& preset;

    Tensor seed() const { return trace.seed(targets); }
    int64_t integer(const std::string& key) const;
    float number(const std::string& key) const;
    // The spec's value of a Number parameter, or nullopt when it gives none (for defaults that the
    // caller or the input decides: the input's lower bound, the caller's PresetOptions).
    std::optional<float> number_if_given(const std::string& key) const;
    uint64_t seed_value(const std::string& key = "seed") const;
    const std::string& choice(const std::string& key) const;
};

struct MethodInfo {
    std::string name;
    std::vector<std::string> aliases;  // other spellings parse_method accepts
    MethodKind kind = MethodKind::Gradient;
    MethodArg arg;
    std::vector<MethodParam> params;
    std::string description;           // one line: --list, the docs table and report captions
    bool is_signed = true;             // diverging colours (relevance, gradients) vs sequential (CAMs, saliency)
    Conserves conserves = Conserves::Nothing;
    std::function<Attribution(const MethodCall&)> fn;

    // "name[:ARG][,key=default,...]"
    std::string usage() const;
    const MethodParam* param(const std::string& key) const;
};

class MethodRegistry {
public:
    // Adds a method; gb::Error if its name or an alias is taken, or it has no function.
    void add(MethodInfo info);
    const std::vector<MethodInfo>& methods() const { return methods_; }

private:
    std::vector<MethodInfo> methods_;
};

// Every registered method, by kind (relevance, cam, gradient, perturbation, baseline, model) and then
// in registration order; built on first use.
const std::vector<MethodInfo>& method_table();
// The method named `name` or one of its aliases; nullptr if none.
const MethodInfo* find_method(const std::string& name);

// " (did you mean 'X'?)" for the candidate closest to `text` by edit distance when it is close
// (at most a third of the longer word, and at least one edit); "" otherwise.
std::string did_you_mean(const std::string& text, const std::vector<std::string>& candidates);

// The caption of a spec in reports: its method's description, and its argument.
std::string method_caption(const MethodSpec& spec);

// The table as `glassbox explain --list` prints it, and as the Markdown table of docs/explain.md
// (between <!-- methods:begin --> and <!-- methods:end -->, which a test compares).
std::string method_list_text();
std::string method_table_markdown();

}  // namespace gb::explain

// Defines the registration function of explain/methods/<id>.cpp; see the top of this file.
#define GB_EXPLAIN_METHODS(id)                                                  \
    void gb_explain_methods_##id(::gb::explain::MethodRegistry& registry);      \
    void gb_explain_methods_##id(::gb::explain::MethodRegistry& registry)
