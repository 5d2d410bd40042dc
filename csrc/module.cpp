// The Python module object for stylegan_fast._C. Importing it runs the static
// TORCH_LIBRARY_IMPL registrations of every kernel file linked into it; the op schemas
// themselves are defined in Python (stylegan_fast/_library.py and ops/*/registration.py).
#include <Python.h>

static PyModuleDef stylegan_fast_c_module = {
    PyModuleDef_HEAD_INIT, "_C",
    "Compiled kernels of stylegan_fast, registered with torch.library.", -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&stylegan_fast_c_module); }
