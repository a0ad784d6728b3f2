/* manifest: manifest validation (being written). */
#include "manifest.h"
