/* Built when CONVFUSE_OPENCL=OFF: the OpenCL backend is not compiled in. */
#include "backend.h"

const cf_backend_iface *cf_backend_opencl(void) { return NULL; }
