// glassbox._glassbox: the nanobind extension under the Python package `glassbox`
// (python/glassbox/__init__.py re-exports it with the Pythonic helpers). Thin over
// the C++ API: models (explain/, models/), one Trace serving every method, the
// method table, composites and rules, heatmap rendering, evaluation metrics and
// training (metrics.cpp), model-level methods (model_level.cpp). Arrays in and out are
// NumPy (arrays.h: no copies where the layout allows). Every call that computes
// releases the GIL; gb::Error arrives as glassbox.Error with its text.
#include <nanobind/nanobind.h>

#include "arrays.h"
#include "core/error.h"

namespace gb::python {

void bind_models(nb::module_& m);
void bind_explain(nb::module_& m);
void bind_render(nb::module_& m);
void bind_metrics(nb::module_& m);
void bind_model_level(nb::module_& m);
void bind_counterfactual(nb::module_& m);
void bind_distill(nb::module_& m);
void bind_interventions(nb::module_& m);

}  // namespace gb::python

NB_MODULE(_glassbox, m) {
    namespace nb = nanobind;
    m.doc() = "glassbox's compiled core (use the `glassbox` package, which re-exports it).";
    nb::exception<gb::Error>(m, "Error", PyExc_RuntimeError);
    m.attr("__version__") = GB_VERSION;
    m.attr("build_options") = GB_BUILD_OPTIONS;
    gb::python::bind_models(m);
    gb::python::bind_explain(m);
    gb::python::bind_render(m);
    gb::python::bind_metrics(m);
    gb::python::bind_model_level(m);
    gb::python::bind_counterfactual(m);
    gb::python::bind_distill(m);
    gb::python::bind_interventions(m);
}
