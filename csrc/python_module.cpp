// The Python module `lavin_fast._C`, whose import loads the operator library (declared here, defined
// op by op in csrc/<op>/), with the few functions Python asks of the build: the CPU kernels' instruction
// set, whether CUDA was compiled in, the simt backend switch, and, in the submodule `_C.testing`, the
// hooks only the tests use (output poisoning, the SIMT emulator's self-tests).
#include <Python.h>
#include <torch/library.h>

#include <cstring>

#include "common/alloc.h"
#include "common/cpu_isa.h"
#include "simt/mode.h"
#include "simt/selftest.h"

// The operator library. Each op defines its schemas next to its kernels' registrations, as fragments
// (csrc/<op>/*_register.cpp, csrc/linear/linear.cpp).
TORCH_LIBRARY(lavin_fast, m) {}

namespace {

PyObject* cpu_isa(PyObject*, PyObject*) {
  return PyUnicode_FromString(lavin_fast::cpu::cpu_isa_name(lavin_fast::cpu::cpu_isa()));
}

PyObject* cuda_compiled(PyObject*, PyObject*) {
#ifdef LAVIN_FAST_WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

PyObject* set_poison_outputs(PyObject*, PyObject* arg) {
  const int on = PyObject_IsTrue(arg);
  if (on < 0) return nullptr;
  lavin_fast::set_poison_outputs(on != 0);
  Py_RETURN_NONE;
}

// The backend switch (lavin_fast.simt): (enabled, schedule 0/1/2 = forward/reverse/random, seed).
PyObject* simt_set_mode(PyObject*, PyObject* args) {
  int enabled = 0, schedule = 0;
  unsigned long long seed = 0;
  if (!PyArg_ParseTuple(args, "piK", &enabled, &schedule, &seed)) return nullptr;
  if (schedule < 0 || schedule > 2) {
    PyErr_SetString(PyExc_ValueError, "schedule must be 0 (forward), 1 (reverse) or 2 (random)");
    return nullptr;
  }
  lf::emu::set_mode({enabled != 0, static_cast<lf::emu::Schedule>(schedule), seed});
  Py_RETURN_NONE;
}

PyObject* simt_mode(PyObject*, PyObject*) {
  const lf::emu::Mode m = lf::emu::mode();
  return Py_BuildValue("(NiK)", PyBool_FromLong(m.enabled), static_cast<int>(m.schedule),
                       static_cast<unsigned long long>(m.seed));
}

// [(name, expected error or None)] of the emulator's self-tests.
PyObject* simt_selftests(PyObject*, PyObject*) {
  const auto& tests = lf::emu::selftests();
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(tests.size()));
  if (!list) return nullptr;
  for (size_t i = 0; i < tests.size(); ++i) {
    PyObject* item = tests[i].expected_error ? Py_BuildValue("(ss)", tests[i].name, tests[i].expected_error)
                                             : Py_BuildValue("(sO)", tests[i].name, Py_None);
    if (!item) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

// simt_selftest(name, raw): runs one self-test. raw=False checks it (including the error it must
// raise); raw=True lets a kernel's emulator error through. Either way failures are RuntimeErrors.
PyObject* simt_selftest(PyObject*, PyObject* args) {
  const char* name = nullptr;
  int raw = 0;
  if (!PyArg_ParseTuple(args, "sp", &name, &raw)) return nullptr;
  for (const lf::emu::SelfTest& t : lf::emu::selftests()) {
    if (std::strcmp(t.name, name) != 0) continue;
    try {
      raw ? t.run() : lf::emu::run_selftest(t);
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      return nullptr;
    }
    Py_RETURN_NONE;
  }
  PyErr_Format(PyExc_ValueError, "no SIMT self-test named '%s'", name);
  return nullptr;
}

PyMethodDef kMethods[] = {
    {"cpu_isa", cpu_isa, METH_NOARGS, "Instruction set of the CPU kernels in use (DEFAULT, AVX2, AVX512)."},
    {"cuda_compiled", cuda_compiled, METH_NOARGS, "Whether the CUDA kernels were compiled in."},
    {"simt_set_mode", simt_set_mode, METH_VARARGS,
     "simt_set_mode(enabled, schedule, seed): run the CPU ops' CUDA kernels under the SIMT emulator."},
    {"simt_mode", simt_mode, METH_NOARGS, "(enabled, schedule, seed) of the SIMT backend switch."},
    {nullptr, nullptr, 0, nullptr}};

// lavin_fast._C.testing: for tests/ only, never called by the package.
PyMethodDef kTestingMethods[] = {
    {"set_poison_outputs", set_poison_outputs, METH_O,
     "Fill every kernel output with NaN before the kernel writes it."},
    {"simt_selftests", simt_selftests, METH_NOARGS, "[(name, expected error or None)] of the SIMT self-tests."},
    {"simt_selftest", simt_selftest, METH_VARARGS,
     "simt_selftest(name, raw): runs a SIMT emulator self-test (RuntimeError if it fails)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_C", "lavin_fast native operators", -1, kMethods};
PyModuleDef kTestingModule = {PyModuleDef_HEAD_INIT, "_C.testing", "lavin_fast test hooks (tests/ only)", -1,
                              kTestingMethods};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&kModule);
  if (!module) return nullptr;
  PyObject* testing = PyModule_Create(&kTestingModule);
  if (!testing || PyModule_AddObject(module, "testing", testing) < 0) {  // steals `testing` on success
    Py_XDECREF(testing);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
