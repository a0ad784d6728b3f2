#include <stdio.h>
#include "berth_version.h"
int main(void) { printf("berth %s\n", BERTH_VERSION); return 0; }
