/* meta: SQLite metadata store (being written). */
#include "meta.h"
