/* Built when CONVFUSE_CUDA=OFF: the CUDA backend is not compiled in. */
#include "backend.h"

const cf_backend_iface *cf_backend_cuda(void) { return NULL; }
