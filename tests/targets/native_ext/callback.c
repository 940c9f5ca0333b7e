/* A tiny C extension for test_native: call_back(f) calls f() from C, so a stack reads
   Python -> C (pyprofd_native_call_back) -> Python. Built by the test against the
   target interpreter's headers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

__attribute__((noinline)) static PyObject* pyprofd_native_call_back(PyObject* self, PyObject* f) {
  PyObject* r = PyObject_CallObject(f, NULL);
  __asm__ volatile("" ::: "memory"); /* not a tail call: this frame stays on the stack */
  return r;
}

static PyMethodDef methods[] = {
    {"call_back", pyprofd_native_call_back, METH_O, "call f() from C"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "pyprofd_callback", NULL, -1, methods};

PyMODINIT_FUNC PyInit_pyprofd_callback(void) { return PyModule_Create(&module); }
